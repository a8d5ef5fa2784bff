//! The proxy path: the server calls an upstream over HTTP and passes its answer on; when the upstream fails, the
//! client gets a 502 that quotes the upstream's error body.
//!
//! Seed C read the upstream's error body whole before quoting it, so an upstream that failed with a large body
//! (an HTML error page, a dump) cost its full size per call. The merged fix caps the read at 1 KiB
//! (`io.LimitReader`); the rest of the body is never read. The quote says when it was cut, so nothing is dropped
//! without a word.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// The merged fix's cap on a quoted upstream error body.
pub const ERROR_BODY_CAP_BYTES: usize = 1024;

/// How much of an upstream error body to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorBodyRead {
    /// Read the whole body (seed C before its fix).
    Whole,
    /// Read at most this many bytes and stop.
    CappedAt(usize),
}

/// The HTTP client the proxy calls upstreams with.
pub type UpstreamClient = Client<HttpConnector, Empty<Bytes>>;

/// A new client on the current tokio runtime.
pub fn upstream_client() -> UpstreamClient {
    Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Calls `uri` and turns the answer into the proxy's response.
pub async fn proxy_get(
    client: &UpstreamClient,
    uri: &str,
    error_body_read: ErrorBodyRead,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let bad_gateway = axum::http::StatusCode::BAD_GATEWAY;
    let uri: axum::http::Uri = match uri.parse() {
        Ok(uri) => uri,
        Err(error) => {
            return (
                bad_gateway,
                format!("upstream {uri:?} is not a valid URI: {error}\n"),
            )
                .into_response();
        }
    };
    let response = match client.get(uri.clone()).await {
        Ok(response) => response,
        Err(error) => {
            return (
                bad_gateway,
                format!("upstream {uri}: request failed: {error}\n"),
            )
                .into_response();
        }
    };
    let status = response.status();
    if status.is_success() {
        let (parts, body) = response.into_parts();
        return axum::response::Response::from_parts(parts, axum::body::Body::new(body));
    }
    let mut body = response.into_body();
    let (quoted, cut) = match read_error_body(&mut body, error_body_read).await {
        Ok(read) => read,
        Err(error) => {
            return (
                bad_gateway,
                format!("upstream {uri} answered {status}; its body could not be read: {error}\n"),
            )
                .into_response();
        }
    };
    let note = if cut {
        format!(" [error body cut at {} bytes]", quoted.len())
    } else {
        String::new()
    };
    (
        bad_gateway,
        format!(
            "upstream {uri} answered {status}: {}{note}\n",
            String::from_utf8_lossy(&quoted)
        ),
    )
        .into_response()
}

/// Reads an error body whole or up to the cap; `true` in the answer when the body went on past the cap.
async fn read_error_body(
    body: &mut hyper::body::Incoming,
    error_body_read: ErrorBodyRead,
) -> Result<(Vec<u8>, bool), hyper::Error> {
    let cap = match error_body_read {
        ErrorBodyRead::Whole => usize::MAX,
        ErrorBodyRead::CappedAt(cap) => cap,
    };
    let mut quoted = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let room = cap - quoted.len();
        if data.len() > room {
            quoted.extend_from_slice(&data[..room]);
            return Ok((quoted, true));
        }
        quoted.extend_from_slice(&data);
    }
    Ok((quoted, false))
}
