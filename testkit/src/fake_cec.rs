//! A fake Huawei CEC on loopback enforcing the documented contract: the AK/SK token API (JSON
//! body with exactly app_key and app_secret, `X-Token-Expire` of at most 3600) and
//! `queryAgentInfo` (GET, the document's path, `X-APP-Key`, `Authorization: Bearer <a token it
//! issued and that has not expired>`). Deviations are recorded (the test then fails) and
//! answered 418; an unknown or expired token gets 401, as a real CEC would answer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

pub const APP_KEY: &str = "cec-app-key-9d1e";
pub const APP_SECRET: &str = "cec-app-secret-77f0";
pub const TOKEN_PATH: &str = "/apigovernance/api/oauth/tokenByAkSk";
pub const AGENTS_PATH: &str = "/apiaccess/CC-Mangemant/v1/queryAgentInfo";
pub const SIP_PASSWORDS: [&str; 3] = ["cti-pw-1001", "cti-pw-1002", "cti-pw-1003"];

/// What the fake answers.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// The directory as this JSON (`queryAgentInfo`'s body).
    Directory(serde_json::Value),
    /// The token API answers this status.
    TokenFails(u16),
    /// queryAgentInfo answers this status.
    AgentsFail(u16),
    /// queryAgentInfo answers 200 with this body.
    AgentsBody(&'static str),
    /// Calls to the token API or queryAgentInfo are held open, never answered: a stalled CEC.
    Stall,
}

/// The standard directory: agents 1001..1003, the port as a number or as a string.
pub fn directory(work_nos: &[u64], port_as_string: bool) -> serde_json::Value {
    let agents: Vec<serde_json::Value> = work_nos
        .iter()
        .map(|w| {
            let i = (*w as usize).saturating_sub(1001) % SIP_PASSWORDS.len();
            serde_json::json!({"workNo": w, "accountCode": format!("acc{w}"),
                               "sipAccount": format!("{}", 8000 + w), "sipPwd": SIP_PASSWORDS[i]})
        })
        .collect();
    let port = if port_as_string {
        serde_json::json!("5060")
    } else {
        serde_json::json!(5060)
    };
    serde_json::json!({"sipServiceIp": "10.100.10.10", "sipServicePort": port, "agents": agents})
}

struct Token {
    value: String,
    valid: bool,
}

struct State {
    behavior: Mutex<Behavior>,
    tokens: Mutex<Vec<Token>>,
    token_requests: AtomicUsize,
    agent_requests: AtomicUsize,
    violations: Mutex<Vec<String>>,
    /// The `X-TenantSpaceID` every call must carry (None: none may).
    tenant: Mutex<Option<String>>,
    /// The AK/SK this CEC issues tokens for.
    app_key: String,
    app_secret: String,
}

pub struct FakeCec {
    pub base_url: String,
    state: Arc<State>,
}

fn answer(status: u16, body: impl Into<Bytes>) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

impl FakeCec {
    pub async fn start() -> FakeCec {
        Self::start_with(APP_KEY, APP_SECRET).await
    }

    /// A CEC with its own AK/SK (a platform tenant's).
    pub async fn start_with(app_key: &str, app_secret: &str) -> FakeCec {
        let state = Arc::new(State {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            behavior: Mutex::new(Behavior::Directory(directory(&[1001, 1002, 1003], false))),
            tokens: Mutex::new(Vec::new()),
            token_requests: AtomicUsize::new(0),
            agent_requests: AtomicUsize::new(0),
            violations: Mutex::new(Vec::new()),
            tenant: Mutex::new(None),
        });
        let server_state = state.clone();
        let base_url = crate::serve_loopback(move |req| {
            let state = server_state.clone();
            async move { state.answer(req).await }
        })
        .await;
        FakeCec { base_url, state }
    }

    /// From now on every call must carry `X-TenantSpaceID: id` (as a CEC deployment scoped by
    /// tenant space requires); without this, a call carrying one is a violation.
    pub fn require_tenant(&self, id: &str) {
        *self.state.tenant.lock().unwrap() = Some(id.to_string());
    }

    pub fn set(&self, behavior: Behavior) {
        *self.state.behavior.lock().unwrap() = behavior;
    }

    /// Every token issued so far stops working (as when they expire).
    pub fn expire_tokens(&self) {
        for t in self.state.tokens.lock().unwrap().iter_mut() {
            t.valid = false;
        }
    }

    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    pub fn agent_requests(&self) -> usize {
        self.state.agent_requests.load(Ordering::SeqCst)
    }

    pub fn assert_no_violations(&self) {
        let v = self.state.violations.lock().unwrap();
        assert!(v.is_empty(), "CEC contract violations: {v:#?}");
    }
}

impl State {
    fn violation(&self, what: String) -> http::Response<Full<Bytes>> {
        self.violations.lock().unwrap().push(what);
        answer(418, r#"{"error":"contract_violation"}"#)
    }

    async fn answer(
        &self,
        req: http::Request<hyper::body::Incoming>,
    ) -> http::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        };
        let behavior = self.behavior.lock().unwrap().clone();
        let tenant = self.tenant.lock().unwrap().clone();
        if header("x-tenantspaceid") != tenant {
            return self.violation(format!(
                "{}: X-TenantSpaceID {:?}, expected {tenant:?}",
                parts.uri.path(),
                header("x-tenantspaceid")
            ));
        }
        if matches!(behavior, Behavior::Stall)
            && [TOKEN_PATH, AGENTS_PATH].contains(&parts.uri.path())
        {
            std::future::pending::<()>().await;
        }
        match parts.uri.path() {
            TOKEN_PATH => {
                self.token_requests.fetch_add(1, Ordering::SeqCst);
                if parts.method != http::Method::POST {
                    return self.violation(format!("token: method {}", parts.method));
                }
                if !header("content-type").is_some_and(|c| c.starts_with("application/json")) {
                    return self.violation("token: content-type is not JSON".into());
                }
                match header("x-token-expire").and_then(|v| v.parse::<u32>().ok()) {
                    Some(1..=3600) => {}
                    other => return self.violation(format!("token: X-Token-Expire {other:?}")),
                }
                let Ok(json) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    return self.violation("token: body is not JSON".into());
                };
                let expected =
                    serde_json::json!({"app_key": self.app_key, "app_secret": self.app_secret});
                if json != expected {
                    return self.violation("token: body is not {app_key, app_secret}".into());
                }
                if let Behavior::TokenFails(status) = behavior {
                    return answer(status, r#"{"error":"token service down"}"#);
                }
                let mut tokens = self.tokens.lock().unwrap();
                let value = format!("cec-token-{}", tokens.len() + 1);
                tokens.push(Token {
                    value: value.clone(),
                    valid: true,
                });
                answer(
                    200,
                    serde_json::json!({"AccessToken": value, "Expires": "3600"}).to_string(),
                )
            }
            AGENTS_PATH => {
                self.agent_requests.fetch_add(1, Ordering::SeqCst);
                if parts.method != http::Method::GET {
                    return self.violation(format!("agents: method {}", parts.method));
                }
                if header("x-app-key").as_deref() != Some(self.app_key.as_str()) {
                    return self.violation("agents: X-APP-Key is not the app key".into());
                }
                let Some(token) = header("authorization")
                    .and_then(|a| a.strip_prefix("Bearer ").map(str::to_string))
                else {
                    return self.violation("agents: Authorization is not `Bearer <token>`".into());
                };
                let known = self
                    .tokens
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|t| t.value == token && t.valid);
                if !known {
                    return answer(401, r#"{"error":"token expired or unknown"}"#);
                }
                match behavior {
                    Behavior::Directory(json) => answer(200, json.to_string()),
                    Behavior::AgentsFail(status) => answer(status, r#"{"error":"down"}"#),
                    Behavior::AgentsBody(body) => answer(200, body),
                    Behavior::TokenFails(_) | Behavior::Stall => answer(500, ""),
                }
            }
            other => self.violation(format!("unexpected path {other}")),
        }
    }
}
