//! A fake Fuyun IdP token-exchange endpoint on loopback that enforces the documented contract
//! strictly: POST, form encoding (never JSON), the Basic client credentials, exactly the five
//! fields with their values, and in JWT mode an RS256 signature valid under the agent key's
//! public half with the documented claims. Any deviation is recorded (the test then fails) and
//! answered 418.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

pub const PATH: &str = "/oauth/token_exchange";
pub const CLIENT_ID: &str = "fuyun-client";
pub const CLIENT_SECRET: &str = "fuyun-client-secret-0451";
pub const SCOPE: &str = "user_management,hotline";
pub const REDIRECT_URL: &str = "https://crm.example.com/aiccs/callback";
pub const ISSUER: &str = "https://crm.example.com";
pub const APP_NAME: &str = "crmapp";

/// The AICCS app the fake stands for: its client credentials and what the requests must name.
#[derive(Clone, Debug)]
pub struct App {
    pub client_id: String,
    pub client_secret: String,
    pub scope: String,
    pub redirect_url: String,
    pub issuer: String,
    pub app_name: String,
}

impl Default for App {
    /// The constants above.
    fn default() -> Self {
        App {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            scope: SCOPE.into(),
            redirect_url: REDIRECT_URL.into(),
            issuer: ISSUER.into(),
            app_name: APP_NAME.into(),
        }
    }
}

/// What the fake answers.
#[derive(Clone, Debug)]
pub enum Behavior {
    /// 200 with a fresh access token valid `expires_in` seconds.
    Success { expires_in: u64 },
    /// This status with this body.
    Status(u16, &'static str),
    /// 200 with a body that is not a token.
    Garbage,
    /// Never answers.
    Hang,
    /// 302 to another path (which must never be requested).
    Redirect,
}

/// The agent-signing key pair, made fresh for each test run (no key is kept in the repo).
pub struct KeyPair {
    /// PKCS#8 DER, base64: the form of Alibaba's Java demo.
    pub private_base64: String,
    pub private_pem: String,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl KeyPair {
    pub fn generate() -> KeyPair {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        use aws_lc_rs::signature::KeyPair as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let der: Pkcs8V1Der = pair.as_der().unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
        let lines: Vec<String> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let public = pair.public_key();
        KeyPair {
            private_pem: format!(
                "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
                lines.join("\n")
            ),
            private_base64: b64,
            modulus: public.modulus().big_endian_without_leading_zero().to_vec(),
            exponent: public.exponent().big_endian_without_leading_zero().to_vec(),
        }
    }
}

/// What the fake expects of JWT-mode subject tokens.
pub struct JwtExpectation {
    pub key: jsonwebtoken::DecodingKey,
    pub exp_millis: bool,
}

#[derive(Default)]
pub struct Seen {
    /// Every contract violation, in words.
    pub violations: Vec<String>,
    /// The subject tokens received, in order.
    pub subject_tokens: Vec<String>,
    /// The `jti` of every valid JWT received.
    pub jtis: Vec<String>,
    /// Access tokens handed out.
    pub access_tokens: Vec<String>,
}

pub struct FakeIdp {
    pub url: String,
    behavior: Arc<Mutex<Behavior>>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    /// While false, answers wait (to pile up concurrent requests); `release` opens it.
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    first_request: Arc<tokio::sync::Notify>,
}

impl FakeIdp {
    /// Starts the fake on an ephemeral loopback port (open gate).
    pub async fn start(jwt: JwtExpectation) -> FakeIdp {
        Self::start_for(jwt, App::default()).await
    }

    /// The fake of another app (a platform tenant's own).
    pub async fn start_for(jwt: JwtExpectation, app: App) -> FakeIdp {
        let behavior = Arc::new(Mutex::new(Behavior::Success { expires_in: 3600 }));
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let gate = Arc::new(tokio::sync::watch::channel(true).0);
        let first_request = Arc::new(tokio::sync::Notify::new());
        let state = Arc::new(State {
            behavior: behavior.clone(),
            requests: requests.clone(),
            seen: seen.clone(),
            gate: gate.clone(),
            first_request: first_request.clone(),
            jwt,
            app,
        });
        let base = crate::serve_loopback(move |req| {
            let state = state.clone();
            async move { state.answer(req).await }
        })
        .await;
        FakeIdp {
            url: format!("{base}{PATH}"),
            behavior,
            requests,
            seen,
            gate,
            first_request,
        }
    }

    pub fn set(&self, behavior: Behavior) {
        *self.behavior.lock().unwrap() = behavior;
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap()
    }

    /// Fails the test if any request broke the contract.
    pub fn assert_no_violations(&self) {
        let seen = self.seen();
        assert!(
            seen.violations.is_empty(),
            "contract violations: {:#?}",
            seen.violations
        );
    }

    /// Holds answers until `release`.
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// Resolves once a request has arrived (call before the request is sent).
    pub fn first_request(&self) -> tokio::sync::futures::Notified<'_> {
        self.first_request.notified()
    }
}

struct State {
    behavior: Arc<Mutex<Behavior>>,
    requests: Arc<AtomicUsize>,
    seen: Arc<Mutex<Seen>>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
    first_request: Arc<tokio::sync::Notify>,
    jwt: JwtExpectation,
    app: App,
}

type Answer = http::Response<Full<Bytes>>;

fn answer(status: u16, body: impl Into<Bytes>) -> Answer {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap()
}

impl State {
    async fn answer(&self, req: http::Request<hyper::body::Incoming>) -> Answer {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.first_request.notify_one();
        let (parts, body) = req.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let violations = self.check(&parts, &body);
        if !violations.is_empty() {
            self.seen.lock().unwrap().violations.extend(violations);
            return answer(418, r#"{"error":"contract_violation"}"#);
        }
        let _ = self.gate.subscribe().wait_for(|open| *open).await;
        let behavior = self.behavior.lock().unwrap().clone();
        match behavior {
            Behavior::Success { expires_in } => {
                let token = format!("at-{}", uuid::Uuid::new_v4());
                self.seen.lock().unwrap().access_tokens.push(token.clone());
                answer(
                    200,
                    serde_json::json!({"access_token": token, "token_type": "bearer",
                        "expires_in": expires_in, "scope": "fuyun-dev",
                        "iss": "http://developer.rhinokeen.com", "jti": uuid::Uuid::new_v4().to_string()})
                    .to_string(),
                )
            }
            Behavior::Status(status, body) => answer(status, body),
            Behavior::Garbage => answer(200, "<html>gateway hiccup</html>"),
            Behavior::Hang => std::future::pending().await,
            Behavior::Redirect => http::Response::builder()
                .status(302)
                .header("location", "/elsewhere")
                .body(Full::new(Bytes::new()))
                .unwrap(),
        }
    }

    fn check(&self, parts: &http::request::Parts, body: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        if parts.method != http::Method::POST {
            v.push(format!("method {}", parts.method));
        }
        if parts.uri.path() != PATH {
            v.push(format!("path {}", parts.uri.path()));
        }
        if parts.uri.query().is_some() {
            v.push("parameters in the query string".into());
        }
        let content_type = parts
            .headers
            .get("content-type")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !content_type.starts_with("application/x-www-form-urlencoded") {
            v.push(format!("content-type {content_type:?}"));
        }
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", self.app.client_id, self.app.client_secret))
        );
        if parts
            .headers
            .get("authorization")
            .and_then(|h| h.to_str().ok())
            != Some(&expected)
        {
            v.push("authorization is not Basic base64(client_id:client_secret)".into());
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let mut fields: HashMap<String, String> = HashMap::new();
        for (k, val) in &pairs {
            if fields.insert(k.clone(), val.clone()).is_some() {
                v.push(format!("field {k} repeated"));
            }
        }
        let mut names: Vec<&str> = fields.keys().map(String::as_str).collect();
        names.sort_unstable();
        if names
            != [
                "grant_type",
                "redirect_url",
                "scope",
                "subject_issuer",
                "subject_token",
            ]
        {
            v.push(format!("fields {names:?}"));
            return v;
        }
        if fields["grant_type"] != "urn:ietf:params:oauth:grant-type:token-exchange" {
            v.push("grant_type".into());
        }
        if fields["scope"] != self.app.scope {
            v.push("scope".into());
        }
        if fields["redirect_url"] != self.app.redirect_url {
            v.push("redirect_url".into());
        }
        let subject = fields["subject_token"].clone();
        self.seen
            .lock()
            .unwrap()
            .subject_tokens
            .push(subject.clone());
        match fields["subject_issuer"].as_str() {
            i if i == self.app.issuer => self.check_jwt(&subject, &mut v),
            a if a == self.app.app_name => {
                if subject.split('.').count() == 3 && subject.starts_with("eyJ") {
                    v.push("a JWT was sent in OAuth mode".into());
                }
            }
            other => v.push(format!("subject_issuer {other:?}")),
        }
        v
    }

    fn check_jwt(&self, token: &str, v: &mut Vec<String>) {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_exp = false; // checked below, in either unit
        validation.set_issuer(&[&self.app.issuer]);
        validation.set_required_spec_claims(&["iss", "exp"]);
        let data =
            match jsonwebtoken::decode::<serde_json::Value>(token, &self.jwt.key, &validation) {
                Ok(d) => d,
                Err(e) => {
                    v.push(format!("JWT rejected: {e}"));
                    return;
                }
            };
        let claims = data.claims;
        let mut names: Vec<&str> = claims
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        if names != ["exp", "iss", "jti", "user_name"] {
            v.push(format!("claims {names:?}"));
        }
        if claims["user_name"].as_str().is_none_or(str::is_empty) {
            v.push("user_name".into());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let exp = claims["exp"].as_i64().unwrap_or(0);
        let (lo, hi) = if self.jwt.exp_millis {
            (now * 1000, (now + 86_400) * 1000)
        } else {
            (now, now + 86_400)
        };
        if exp <= lo || exp > hi {
            v.push(format!(
                "exp {exp} not within the next day (millis: {})",
                self.jwt.exp_millis
            ));
        }
        match claims["jti"].as_str().map(uuid::Uuid::parse_str) {
            Some(Ok(u)) if u.get_version_num() == 4 => {
                self.seen.lock().unwrap().jtis.push(u.to_string());
            }
            _ => v.push("jti is not a random UUID".into()),
        }
    }
}

/// The decoding key for a generated pair.
pub fn decoding_key(pair: &KeyPair) -> jsonwebtoken::DecodingKey {
    jsonwebtoken::DecodingKey::from_rsa_raw_components(&pair.modulus, &pair.exponent)
}
