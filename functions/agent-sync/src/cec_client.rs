//! The Huawei CEC client: an AK/SK token (cached until shortly before it expires) and
//! `queryAgentInfo`, validated whole before anyone uses it.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use cc_shared::config::ConfigError;
use cc_shared::upstream::UpstreamClient;
use cc_shared::web::error::ApiError;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};

/// The document's spelling (Huawei's other pages write `CC-Management`).
pub const DEFAULT_AGENT_INFO_PATH: &str = "/apiaccess/CC-Mangemant/v1/queryAgentInfo";
pub const TOKEN_PATH: &str = "/apigovernance/api/oauth/tokenByAkSk";
/// Largest directory answer read, and most agents accepted in it.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;
pub const MAX_AGENTS: usize = 50_000;
/// A token is renewed this long before the CEC says it expires.
const TOKEN_MARGIN_SECONDS: i64 = 60;

/// One agent of a live directory answer, validated. Holds the softphone password only in
/// memory, for the softphone endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveAgent {
    pub work_no: String,
    pub account_code: Option<String>,
    pub sip_account: Option<String>,
    pub sip_pwd: Option<String>,
}

impl std::fmt::Debug for LiveAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAgent")
            .field("work_no", &self.work_no)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
pub struct Directory {
    pub sip_service_ip: Option<String>,
    pub sip_service_port: Option<u16>,
    pub agents: Vec<LiveAgent>,
}

pub struct CecSettings {
    pub base_url: String,
    pub agent_info_path: String,
    pub app_key: String,
    pub app_secret: String,
    pub token_expire_seconds: u32,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    /// `X-TenantSpaceID` on every call, for CEC deployments that scope APIs by tenant space.
    pub tenant_space_id: Option<String>,
}

/// Longest tenant space ID accepted.
pub const MAX_TENANT_SPACE_ID_CHARS: usize = 64;

pub struct CecClient {
    client: UpstreamClient,
    token_url: Uri,
    agents_url: Uri,
    app_key: HeaderValue,
    tenant_space_id: Option<HeaderValue>,
    token_body: Bytes,
    token_expire_seconds: u32,
    /// (token, epoch seconds after which it is not used)
    token: Mutex<Option<(String, i64)>>,
}

fn failed(reason: impl Into<String>) -> ApiError {
    ApiError::UpstreamFailed {
        timeout: false,
        reason: reason.into(),
    }
}

impl CecClient {
    pub fn new(s: CecSettings) -> Result<Self, ConfigError> {
        let base = s.base_url.trim_end_matches('/');
        if !s.agent_info_path.starts_with('/') {
            return Err(ConfigError::Invalid {
                name: "CEC_AGENT_INFO_PATH",
                reason: "must start with /".into(),
            });
        }
        let token_url =
            cc_shared::upstream::url_setting("CEC_BASE_URL", &format!("{base}{TOKEN_PATH}"))?;
        let agents_url = cc_shared::upstream::url_setting(
            "CEC_BASE_URL",
            &format!("{base}{}", s.agent_info_path),
        )?;
        let mut app_key = HeaderValue::from_str(&s.app_key).map_err(|_| ConfigError::Invalid {
            name: "CEC_APP_KEY",
            reason: "holds characters a header cannot".into(),
        })?;
        app_key.set_sensitive(true);
        let tenant_space_id = s
            .tenant_space_id
            .map(|t| {
                let ok =
                    t.len() <= MAX_TENANT_SPACE_ID_CHARS && t.bytes().all(|b| b.is_ascii_graphic());
                ok.then(|| HeaderValue::from_str(&t).ok())
                    .flatten()
                    .ok_or_else(|| ConfigError::Invalid {
                        name: "CEC_TENANT_SPACE_ID",
                        reason: format!(
                            "at most {MAX_TENANT_SPACE_ID_CHARS} visible ASCII characters"
                        ),
                    })
            })
            .transpose()?;
        let token_body = serde_json::to_vec(&TokenRequest {
            app_key: s.app_key,
            app_secret: s.app_secret,
        })
        .map_err(|_| ConfigError::Invalid {
            name: "CEC_APP_SECRET",
            reason: "cannot be encoded".into(),
        })?;
        Ok(CecClient {
            client: UpstreamClient::new(
                "CEC_BASE_URL",
                "the CEC",
                s.connect_timeout,
                s.timeout,
                MAX_ANSWER_BYTES,
            )?,
            token_url,
            agents_url,
            app_key,
            tenant_space_id,
            token_body: Bytes::from(token_body),
            token_expire_seconds: s.token_expire_seconds,
            token: Mutex::new(None),
        })
    }

    fn add_tenant(&self, headers: &mut HeaderMap) {
        if let Some(t) = &self.tenant_space_id {
            headers.insert(HeaderName::from_static("x-tenantspaceid"), t.clone());
        }
    }

    fn cached_token(&self, now: i64) -> Option<String> {
        let guard = self.token.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(t, _)| t.clone())
    }

    fn forget_token(&self) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn new_token(&self, now: i64) -> Result<String, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            HeaderName::from_static("x-token-expire"),
            HeaderValue::from(self.token_expire_seconds),
        );
        self.add_tenant(&mut headers);
        let answer = self
            .client
            .send(
                Method::POST,
                &self.token_url,
                headers,
                self.token_body.clone(),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(failed(format!(
                "the CEC refused a token (HTTP {})",
                answer.status.as_u16()
            )));
        }
        let token: TokenAnswer = serde_json::from_slice(&answer.body)
            .map_err(|_| failed("the CEC's token answer is not the documented JSON"))?;
        if token.access_token.is_empty() {
            return Err(failed("the CEC's token answer has no AccessToken"));
        }
        // `Expires` arrives as a string (or a number) of seconds; without it, trust what we asked.
        let lifetime = token
            .expires
            .as_ref()
            .and_then(|v| match v {
                serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
                serde_json::Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .unwrap_or(i64::from(self.token_expire_seconds));
        let until = now + lifetime.min(i64::from(self.token_expire_seconds)) - TOKEN_MARGIN_SECONDS;
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    /// The whole directory, or an error if any step fails or the answer is not entirely valid.
    pub async fn directory(&self, now: i64) -> Result<Directory, ApiError> {
        let mut retried = false;
        loop {
            let token = match self.cached_token(now) {
                Some(t) => t,
                None => self.new_token(now).await?,
            };
            let mut headers = HeaderMap::new();
            headers.insert(HeaderName::from_static("x-app-key"), self.app_key.clone());
            self.add_tenant(&mut headers);
            let mut bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| failed("the CEC's token cannot be sent in a header"))?;
            bearer.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, bearer);
            headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            let answer = self
                .client
                .send(Method::GET, &self.agents_url, headers, Bytes::new())
                .await?;
            // A token revoked or expired early: one fresh token, one more try.
            if answer.status == StatusCode::UNAUTHORIZED && !retried {
                self.forget_token();
                retried = true;
                continue;
            }
            if !answer.status.is_success() {
                return Err(failed(format!(
                    "queryAgentInfo failed (HTTP {})",
                    answer.status.as_u16()
                )));
            }
            return parse_directory(&answer.body);
        }
    }
}

/// Validates a `queryAgentInfo` answer whole: any bad agent rejects the answer.
pub fn parse_directory(body: &[u8]) -> Result<Directory, ApiError> {
    let info: AgentInfo = serde_json::from_slice(body)
        .map_err(|_| failed("queryAgentInfo's answer is not the documented JSON"))?;
    if info.agents.len() > MAX_AGENTS {
        return Err(failed(format!("more than {MAX_AGENTS} agents")));
    }
    let port = match &info.sip_service_port {
        None => None,
        Some(v) => match v.as_text().parse::<u16>() {
            Ok(p) if p >= 1 => Some(p),
            _ => return Err(failed("sipServicePort is not a port number")),
        },
    };
    let mut seen = HashSet::new();
    let mut agents = Vec::with_capacity(info.agents.len());
    for (i, a) in info.agents.into_iter().enumerate() {
        let work_no = a
            .work_no
            .map(|w| w.as_text())
            .filter(|w| cc_shared::domain::agents::valid_work_no(w))
            .ok_or_else(|| failed(format!("agents[{i}] has no valid workNo")))?;
        if !seen.insert(work_no.clone()) {
            return Err(failed(format!("agents[{i}] repeats a workNo")));
        }
        // Kept and printed: control characters (`acc\r\nx`) are refused like a bad workNo.
        let text = |v: Option<String>, field: &str| -> Result<Option<String>, ApiError> {
            match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                Some(s) if !cc_shared::domain::agents::valid_text(&s) => Err(failed(format!(
                    "agents[{i}].{field} has control characters or more than {} characters",
                    cc_shared::domain::agents::MAX_TEXT_CHARS
                ))),
                v => Ok(v),
            }
        };
        agents.push(LiveAgent {
            work_no,
            account_code: text(a.account_code, "accountCode")?,
            sip_account: text(a.sip_account, "sipAccount")?,
            sip_pwd: a.sip_pwd.filter(|p| !p.is_empty()),
        });
    }
    let sip_service_ip = info.sip_service_ip.filter(|s| !s.is_empty());
    if sip_service_ip
        .as_deref()
        .is_some_and(|ip| !cc_shared::domain::agents::valid_text(ip))
    {
        return Err(failed("sipServiceIp has control characters or is too long"));
    }
    Ok(Directory {
        sip_service_ip,
        sip_service_port: port,
        agents,
    })
}

// The CEC's own wire types.

/// `POST /apigovernance/api/oauth/tokenByAkSk` body.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenRequest {
    pub app_key: String,
    pub app_secret: String,
}

/// Its answer (`Expires` arrives as a string of seconds).
#[derive(Debug, Deserialize, Serialize)]
pub struct TokenAnswer {
    #[serde(rename = "AccessToken")]
    pub access_token: String,
    #[serde(rename = "Expires", default)]
    pub expires: Option<serde_json::Value>,
}

/// A value the CEC sends as a number or as a string of digits.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum NumberOrString {
    Number(u64),
    String(String),
}

impl NumberOrString {
    pub fn as_text(&self) -> String {
        match self {
            NumberOrString::Number(n) => n.to_string(),
            NumberOrString::String(s) => s.trim().to_string(),
        }
    }
}

/// `queryAgentInfo`'s answer.
#[derive(Debug, Deserialize, Serialize)]
pub struct AgentInfo {
    #[serde(rename = "sipServiceIp", default)]
    pub sip_service_ip: Option<String>,
    #[serde(rename = "sipServicePort", default)]
    pub sip_service_port: Option<NumberOrString>,
    pub agents: Vec<CecAgent>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct CecAgent {
    #[serde(rename = "workNo")]
    pub work_no: Option<NumberOrString>,
    #[serde(rename = "sipAccount", default)]
    pub sip_account: Option<String>,
    #[serde(rename = "sipPwd", default)]
    pub sip_pwd: Option<String>,
    #[serde(rename = "accountCode", default)]
    pub account_code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_come_as_numbers_or_strings() {
        for body in [
            r#"{"sipServiceIp":"10.0.0.1","sipServicePort":5060,"agents":[{"workNo":1001}]}"#,
            r#"{"sipServiceIp":"10.0.0.1","sipServicePort":"5060","agents":[{"workNo":"1001"}]}"#,
        ] {
            let d = parse_directory(body.as_bytes()).unwrap();
            assert_eq!(d.sip_service_port, Some(5060));
            assert_eq!(d.agents[0].work_no, "1001");
        }
    }

    #[test]
    fn one_bad_agent_rejects_the_whole_answer() {
        for body in [
            r#"{"agents":[{"workNo":1},{"sipAccount":"2"}]}"#,
            r#"{"agents":[{"workNo":1},{"workNo":"1"}]}"#,
            r#"{"agents":[{"workNo":"a b"}]}"#,
            r#"{"sipServicePort":70000,"agents":[]}"#,
            r#"{"sipServicePort":"x","agents":[]}"#,
            r#"{"sipServiceIp":"10.0.0.1"}"#,
            r#"<html>"#,
            r#"{"agents":[{"workNo":1,"accountCode":"acc\r\nx"}]}"#,
            r#"{"agents":[{"workNo":1,"sipAccount":"\u001b[2J"}]}"#,
            r#"{"sipServiceIp":"10.0.0.1\n","agents":[{"workNo":1}]}"#,
        ] {
            assert!(parse_directory(body.as_bytes()).is_err(), "{body}");
        }
    }
}
