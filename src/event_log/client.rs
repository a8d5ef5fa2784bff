//! The HTTP client side: hyper-util's pooled client over loopback, reading a response body chunk by chunk and
//! timing it. Used by the scenario's load driver, the tests and the benchmark, so that none of them holds a
//! whole response in memory unless it asks to.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::{Duration, Instant};

/// What one request took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTiming {
    pub status: u16,
    /// From sending the request to the first body byte; `None` for an empty body.
    pub time_to_first_byte: Option<Duration>,
    /// From sending the request to the end of the body.
    pub total: Duration,
    pub body_bytes: u64,
}

/// A pooled HTTP/1 client.
#[derive(Clone)]
pub struct LoopbackClient {
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for LoopbackClient {
    fn default() -> Self {
        LoopbackClient::new()
    }
}

impl LoopbackClient {
    /// A client on the current tokio runtime.
    pub fn new() -> LoopbackClient {
        LoopbackClient {
            client: Client::builder(hyper_util::rt::TokioExecutor::new()).build_http(),
        }
    }

    /// GETs `uri` and hands every body chunk to `on_chunk` as it arrives.
    pub async fn get_streaming(
        &self,
        uri: &str,
        mut on_chunk: impl FnMut(&[u8]),
    ) -> anyhow::Result<FetchTiming> {
        let started = Instant::now();
        let uri: hyper::Uri = uri.parse()?;
        let response = self.client.get(uri.clone()).await?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut time_to_first_byte = None;
        let mut body_bytes = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| anyhow::anyhow!("GET {uri}: body: {error}"))?;
            if let Ok(data) = frame.into_data() {
                if data.is_empty() {
                    continue;
                }
                time_to_first_byte.get_or_insert_with(|| started.elapsed());
                body_bytes += data.len() as u64;
                on_chunk(&data);
            }
        }
        Ok(FetchTiming {
            status,
            time_to_first_byte,
            total: started.elapsed(),
            body_bytes,
        })
    }

    /// GETs `uri` and returns the status and the whole body.
    pub async fn get_whole(&self, uri: &str) -> anyhow::Result<(u16, Vec<u8>)> {
        let mut body = Vec::new();
        let timing = self
            .get_streaming(uri, |chunk| body.extend_from_slice(chunk))
            .await?;
        Ok((timing.status, body))
    }
}
