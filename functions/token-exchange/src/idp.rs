//! The Fuyun IdP's token-exchange endpoint: a form POST with the client's Basic credentials.
//! HTTPS with rustls (plain http only to a loopback host, for tests), no redirects followed,
//! connect and total timeouts.

use std::time::Duration;

use crate::wire::TokenResponse;
use base64::Engine;
use bytes::Bytes;
use cc_shared::config::ConfigError;
use cc_shared::upstream::UpstreamClient;
use cc_shared::web::error::ApiError;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Largest IdP answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct IdpClient {
    client: UpstreamClient,
    url: Uri,
    /// `Basic base64(client_id:client_secret)`, marked sensitive.
    authorization: HeaderValue,
    scope: String,
    redirect_url: String,
}

impl std::fmt::Debug for IdpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpClient")
            .field("url", &self.url)
            .finish_non_exhaustive()
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
        cc_shared::upstream::check_url("FUYUN_TOKEN_URL", &s.url)?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", s.client_id, s.client_secret));
        let mut authorization =
            HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| ConfigError::Invalid {
                name: "FUYUN_CLIENT_ID",
                reason: "the client id or secret holds characters a header cannot".into(),
            })?;
        authorization.set_sensitive(true);
        Ok(IdpClient {
            client: UpstreamClient::new(
                "FUYUN_TOKEN_URL",
                "the IdP",
                s.connect_timeout,
                s.timeout,
                MAX_ANSWER_BYTES,
            )?,
            url: s.url,
            authorization,
            scope: s.scope,
            redirect_url: s.redirect_url,
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
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, self.authorization.clone());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=UTF-8"),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        let answer = self
            .client
            .send(Method::POST, &self.url, headers, Bytes::from(form))
            .await?;
        interpret(answer.status, &answer.body)
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
