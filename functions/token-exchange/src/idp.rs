//! The Fuyun IdP's token-exchange endpoint: a form POST with the client's Basic credentials.
//! HTTPS with rustls (plain http only to a loopback host, for tests), no redirects followed,
//! connect and total timeouts.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cc_shared::alibaba::TokenResponse;
use cc_shared::config::ConfigError;
use cc_shared::error::ApiError;
use http::{header, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Largest IdP answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct IdpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    url: Uri,
    /// `Basic base64(client_id:client_secret)`, marked sensitive.
    authorization: HeaderValue,
    scope: String,
    redirect_url: String,
    timeout: Duration,
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

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

pub struct IdpSettings {
    pub url: Uri,
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    pub redirect_url: String,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

impl IdpClient {
    pub fn new(s: IdpSettings) -> Result<Self, ConfigError> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(s.connect_timeout));
        http.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| ConfigError::Invalid {
                name: "FUYUN_TOKEN_URL",
                reason: format!("no TLS root certificates: {e}"),
            })?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", s.client_id, s.client_secret));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| ConfigError::Invalid {
                name: "FUYUN_CLIENT_ID",
                reason: "the client id or secret holds characters a header cannot".into(),
            })?;
        authorization.set_sensitive(true);
        Ok(IdpClient {
            client: Client::builder(TokioExecutor::new()).build(https),
            url: s.url,
            authorization,
            scope: s.scope,
            redirect_url: s.redirect_url,
            timeout: s.timeout,
        })
    }

    /// Exchanges `subject_token` (issued by `subject_issuer`) for an AICCS access token.
    pub async fn exchange(
        &self,
        subject_token: &str,
        subject_issuer: &str,
    ) -> Result<TokenResponse, ApiError> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", GRANT_TYPE)
            .append_pair("scope", &self.scope)
            .append_pair("redirect_url", &self.redirect_url)
            .append_pair("subject_token", subject_token)
            .append_pair("subject_issuer", subject_issuer)
            .finish();
        let request = Request::builder()
            .method(Method::POST)
            .uri(self.url.clone())
            .header(header::AUTHORIZATION, self.authorization.clone())
            .header(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=UTF-8",
            )
            .header(header::ACCEPT, "application/json")
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| failed("request could not be built"))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|_| failed("connection to the IdP failed"))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|_| failed("the IdP's answer was cut off or too large"))?
                .to_bytes();
            Ok::<_, ApiError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| ApiError::UpstreamFailed {
                timeout: true,
                reason: "the IdP did not answer in time".into(),
            })??;
        interpret(status, &body)
    }
}

fn failed(reason: &str) -> ApiError {
    ApiError::UpstreamFailed {
        timeout: false,
        reason: reason.into(),
    }
}

/// Maps the IdP's answer: 2xx with a token is success; 400/403 (and other 4xx) a refusal
/// answered with 403, 401 (our client credentials) a refusal answered with 401; 429, 5xx,
/// redirects and anything unreadable a retryable failure.
fn interpret(status: StatusCode, body: &[u8]) -> Result<TokenResponse, ApiError> {
    if status.is_success() {
        return match serde_json::from_slice::<TokenResponse>(body) {
            Ok(t) if !t.access_token.is_empty() && !t.token_type.is_empty() => Ok(t),
            _ => Err(failed("the IdP answered without a usable token")),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(failed("the IdP failed"));
    }
    if status.is_client_error() {
        // Keep only a well-formed OAuth error code: descriptions may quote what we sent.
        let error = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("error")?.as_str().map(str::to_string))
            .filter(|e| {
                !e.is_empty()
                    && e.len() <= 64
                    && e.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            });
        let answer_status = if status == StatusCode::UNAUTHORIZED {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::FORBIDDEN
        };
        return Err(ApiError::UpstreamRefused {
            status: answer_status,
            error,
        });
    }
    Err(failed("the IdP answered with an unexpected status"))
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
            assert!(check_url("U", &ok.parse().unwrap()).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/x",
            "ftp://127.0.0.1/",
            "http://10.0.0.1/",
        ] {
            assert!(check_url("U", &bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_map_to_success_refusal_or_retryable_failure() {
        let ok =
            br#"{"access_token":"t","token_type":"bearer","expires_in":60,"scope":"s","iss":"x"}"#;
        assert_eq!(interpret(StatusCode::OK, ok).unwrap().access_token, "t");
        let refused = |s: u16, body: &[u8]| match interpret(StatusCode::from_u16(s).unwrap(), body)
        {
            Err(ApiError::UpstreamRefused { status, error }) => (status.as_u16(), error),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(
            refused(400, br#"{"error":"invalid_grant"}"#),
            (403, Some("invalid_grant".into()))
        );
        assert_eq!(refused(401, b"nope"), (401, None));
        assert_eq!(refused(403, br#"{"error":"Bad <script>"}"#), (403, None));
        for (s, body) in [
            (200, &b"<html>"[..]),
            (200, br#"{"access_token":""}"#),
            (500, b""),
            (429, b""),
            (302, b""),
        ] {
            assert!(
                matches!(
                    interpret(StatusCode::from_u16(s).unwrap(), body),
                    Err(ApiError::UpstreamFailed { timeout: false, .. })
                ),
                "{s}"
            );
        }
    }
}
