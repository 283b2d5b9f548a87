//! A counting HTTP proxy in front of DynamoDB Local: every request a client sends through it is
//! one DynamoDB round trip.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub struct CountingProxy {
    pub url: String,
    count: Arc<AtomicU64>,
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> CountingProxy {
        let upstream: http::Uri = upstream.parse().expect("DynamoDB Local URL");
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let count = Arc::new(AtomicU64::new(0));
        let counter = count.clone();
        let url = testkit::serve_loopback(move |req: http::Request<hyper::body::Incoming>| {
            let client = client.clone();
            let upstream = upstream.clone();
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                let (mut parts, body) = req.into_parts();
                let body = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "/".into());
                parts.uri = format!(
                    "{}://{}{path}",
                    upstream.scheme_str().unwrap_or("http"),
                    upstream.authority().map(|a| a.as_str()).unwrap_or_default()
                )
                .parse()
                .unwrap();
                let forwarded = http::Request::from_parts(parts, Full::new(body));
                match client.request(forwarded).await {
                    Ok(resp) => {
                        let (parts, body) = resp.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        http::Response::from_parts(parts, Full::new(body))
                    }
                    Err(_) => http::Response::builder()
                        .status(502)
                        .body(Full::new(Bytes::new()))
                        .unwrap(),
                }
            }
        })
        .await;
        CountingProxy { url, count }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}
