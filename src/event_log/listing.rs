//! `GET /sessions?limit=&cursor=`: the session listing.
//!
//! Seed C listed every session in one call; the merged fix fetched them in pages of 500. Here the faulty technique
//! answers with every session at once whatever the query says, and the paged one answers with one page of at most
//! [`PAGE_LIMIT`] sessions after `cursor` (the last id of the previous page) and the cursor of the next page.

use super::error::EventLogError;
use super::session_dir::{SessionDir, SessionSummary, check_session_id};

/// The merged fix's page size, also the largest `limit` accepted.
pub const PAGE_LIMIT: usize = 500;

/// The listing's query.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ListingQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The listing's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListingPage {
    pub sessions: Vec<SessionSummary>,
    /// Pass as `cursor` to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Every session in one answer (the query is ignored).
pub fn list_all_at_once(dir: &SessionDir) -> Result<ListingPage, EventLogError> {
    Ok(ListingPage {
        sessions: dir.list_all_sorted()?,
        next_cursor: None,
    })
}

/// One page of sessions after the cursor.
pub fn list_one_page(dir: &SessionDir, query: &ListingQuery) -> Result<ListingPage, EventLogError> {
    let limit = query.limit.unwrap_or(PAGE_LIMIT);
    if limit == 0 || limit > PAGE_LIMIT {
        return Err(EventLogError::BadListingRequest(format!(
            "limit={limit}: expected 1 to {PAGE_LIMIT}"
        )));
    }
    if let Some(cursor) = &query.cursor {
        check_session_id(cursor).map_err(|_| {
            EventLogError::BadListingRequest(format!(
                "cursor={cursor:?}: expected a session id from a previous page's next_cursor"
            ))
        })?;
    }
    let mut sessions: Vec<SessionSummary> = dir
        .list_all_sorted()?
        .into_iter()
        .filter(|summary| {
            query
                .cursor
                .as_ref()
                .is_none_or(|cursor| summary.id > *cursor)
        })
        .take(limit + 1)
        .collect();
    let next_cursor = if sessions.len() > limit {
        sessions.truncate(limit);
        sessions.last().map(|summary| summary.id.clone())
    } else {
        None
    };
    Ok(ListingPage {
        sessions,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walking_the_pages_gives_the_whole_listing() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..7 {
            std::fs::write(dir.path().join(format!("s{index}.jsonl")), "{}\n").unwrap();
        }
        let dir = SessionDir::new(dir.path());
        let mut walked = Vec::new();
        let mut query = ListingQuery {
            limit: Some(3),
            cursor: None,
        };
        let mut pages = 0;
        loop {
            let page = list_one_page(&dir, &query).unwrap();
            pages += 1;
            walked.extend(page.sessions);
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(walked, list_all_at_once(&dir).unwrap().sessions);
    }

    #[test]
    fn a_limit_over_the_page_size_is_refused_with_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let query = ListingQuery {
            limit: Some(501),
            cursor: None,
        };
        let error = list_one_page(&SessionDir::new(dir.path()), &query).unwrap_err();
        assert_eq!(error.to_string(), "listing: limit=501: expected 1 to 500");
    }
}
