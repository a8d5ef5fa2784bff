//! Markdown bounded by a length: a pull-request comment on GitHub must stay under 65,536 characters, and a run
//! of many failures with allocation sites in each would pass it. Rows that do not fit are replaced by one line
//! saying how many were left out and where they are, never dropped silently.

/// GitHub's limit on a pull-request comment, in characters; a bounded report never reaches it.
pub const COMMENT_LIMIT: usize = 65_536;

/// Room kept, while listing rows, for what must still follow them (closing tags, the last line).
const RESERVE: usize = 2_048;

/// Markdown that never grows past a limit: rows that do not fit are dropped with a line that says how many and
/// where they are, never silently. Lengths are counted in bytes, which are never fewer than characters.
pub struct BoundedText {
    text: String,
    limit: usize,
    /// The page that has every row, named in the line that says how many were left out.
    full_page: &'static str,
}

impl BoundedText {
    /// Empty, bounded by `limit` bytes; `full_page` is where the rows left out can be read.
    pub fn new(limit: usize, full_page: &'static str) -> BoundedText {
        BoundedText {
            text: String::new(),
            limit,
            full_page,
        }
    }

    /// Appends `text` whatever its length: for headings and closing tags, which [`RESERVE`] keeps room for.
    pub fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Appends the rows that fit, keeping [`RESERVE`] free; the rest become one "… and N more" line.
    pub fn push_rows(&mut self, rows: &[String]) {
        for (index, row) in rows.iter().enumerate() {
            if self.text.len() + row.len() + RESERVE > self.limit {
                self.text.push_str(&format!(
                    "\n… and {} more, see {}\n",
                    rows.len() - index,
                    self.full_page
                ));
                return;
            }
            self.text.push_str(row);
        }
    }

    /// The text.
    pub fn into_text(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_past_the_limit_are_counted_not_dropped() {
        let mut text = BoundedText::new(RESERVE + 100, "compare.html");
        text.push("# head\n");
        let rows: Vec<String> = (0..10)
            .map(|i| format!("row {i:02} {}\n", "x".repeat(20)))
            .collect();
        text.push_rows(&rows);
        let text = text.into_text();
        assert_eq!(
            text,
            format!(
                "# head\n{}{}{}\n… and 7 more, see compare.html\n",
                rows[0], rows[1], rows[2]
            ),
            "7 + 3 rows of 28 bytes fit in 100 past the reserve; a fourth would not"
        );
    }
}
