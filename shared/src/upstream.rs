//! The HTTP client for vendor APIs we call (Alibaba's IdP, Huawei CEC): HTTPS with rustls and
//! the system's root certificates (plain http only to a loopback host, for tests), redirects
//! never followed, connect and total timeouts, bounded answers. Built once per process; the
//! same hyper/rustls/ring stack as the AWS SDK client (`aws::sdk_http_client`), so no
//! second TLS stack.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::ConfigError;
use crate::web::error::ApiError;

/// Whether `uri` is https, or http to a loopback host.
pub fn check_url(name: &'static str, uri: &Uri) -> Result<(), ConfigError> {
    let host = uri.host().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        _ => Err(ConfigError::Invalid {
            name,
            reason: "must be an https:// URL (http:// only to a loopback host)".into(),
        }),
    }
}

/// Parses and checks a URL setting.
pub fn url_setting(name: &'static str, value: &str) -> Result<Uri, ConfigError> {
    let uri: Uri = value.parse().map_err(|_| ConfigError::Invalid {
        name,
        reason: "not a URL".into(),
    })?;
    check_url(name, &uri)?;
    Ok(uri)
}

pub struct UpstreamClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_answer_bytes: usize,
    /// For error messages: "the IdP", "the CEC".
    peer: &'static str,
}

/// An answer: status and body (at most `max_answer_bytes`).
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl UpstreamClient {
    /// `name`: the URL setting, for a message if the system has no root certificates.
    pub fn new(
        name: &'static str,
        peer: &'static str,
        connect_timeout: Duration,
        timeout: Duration,
        max_answer_bytes: usize,
    ) -> Result<Self, ConfigError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ConfigError::Invalid {
                name,
                reason: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(UpstreamClient {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
            max_answer_bytes,
            peer,
        })
    }

    fn failed(&self, what: &str) -> ApiError {
        ApiError::UpstreamFailed {
            timeout: false,
            reason: format!("{}: {what}", self.peer),
        }
    }

    /// Sends one request and reads the answer, within the total timeout. Redirects are
    /// answers like any other (the caller treats them as failures).
    pub async fn send(
        &self,
        method: Method,
        uri: &Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, ApiError> {
        let mut request = Request::builder()
            .method(method)
            .uri(uri.clone())
            .body(Full::new(body))
            .map_err(|_| self.failed("request could not be built"))?;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|_| self.failed("connection failed"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), self.max_answer_bytes)
                .collect()
                .await
                .map_err(|_| self.failed("answer cut off or too large"))?
                .to_bytes();
            Ok::<_, ApiError>(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ApiError::UpstreamFailed {
                timeout: true,
                reason: format!("{} did not answer in time", self.peer),
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_accepted() {
        for ok in [
            "https://signin.rhinokeen.com/oauth/token_exchange",
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert!(url_setting("U", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/x",
            "ftp://127.0.0.1/",
            "http://10.0.0.1/",
            "no url",
        ] {
            assert!(url_setting("U", bad).is_err(), "{bad}");
        }
    }
}
