//! A fake AWS Lambda control plane on loopback, for `cc-callbacks preflight`: the three read
//! operations it may use, as the Lambda API documents them (`GET
//! /2016-08-19/account-settings/`, `GET /2015-03-31/functions/` with `Marker` pagination, `GET
//! /2019-09-30/functions/{name}/concurrency`), each SigV4-signed. Anything else (a write, an
//! unsigned call, another path) is recorded as a deviation and answered 400, so a test that
//! finds a deviation fails.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;

/// The account the fake describes.
#[derive(Debug, Clone)]
pub struct Account {
    /// `AccountLimit.ConcurrentExecutions`.
    pub limit: i64,
    /// Functions (name, reserved concurrency) already in the account.
    pub functions: Vec<(String, Option<i64>)>,
}

/// Functions a `ListFunctions` page holds (small, so that pagination is exercised).
const PAGE: usize = 2;

pub struct FakeLambda {
    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL_LAMBDA`.
    pub url: String,
    deviations: Arc<Mutex<Vec<String>>>,
}

impl FakeLambda {
    pub async fn start(account: Account) -> FakeLambda {
        let deviations = Arc::new(Mutex::new(Vec::new()));
        let seen = deviations.clone();
        let account = Arc::new(account);
        let url = crate::serve_loopback(move |req: http::Request<hyper::body::Incoming>| {
            let (account, seen) = (account.clone(), seen.clone());
            async move {
                match answer(&account, &req) {
                    Ok(body) => reply(200, body),
                    Err(deviation) => {
                        seen.lock().unwrap().push(deviation.clone());
                        reply(400, serde_json::json!({ "message": deviation }))
                    }
                }
            }
        })
        .await;
        FakeLambda { url, deviations }
    }

    /// What a client did that the API does not allow (or preflight must not do).
    pub fn deviations(&self) -> Vec<String> {
        self.deviations.lock().unwrap().clone()
    }
}

fn reply(status: u16, body: serde_json::Value) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn answer<B>(account: &Account, req: &http::Request<B>) -> Result<serde_json::Value, String> {
    let signed = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("AWS4-HMAC-SHA256 Credential="));
    if !signed {
        return Err(format!(
            "{} {} is not SigV4-signed",
            req.method(),
            req.uri()
        ));
    }
    if req.method() != http::Method::GET {
        return Err(format!(
            "{} {}: preflight must only read",
            req.method(),
            req.uri()
        ));
    }
    let path = req.uri().path().trim_end_matches('/');
    let query = req.uri().query().unwrap_or("");
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["2016-08-19", "account-settings"] => {
            let reserved: i64 = account.functions.iter().filter_map(|(_, r)| *r).sum();
            Ok(serde_json::json!({
                "AccountLimit": {
                    "ConcurrentExecutions": account.limit,
                    "UnreservedConcurrentExecutions": account.limit - reserved,
                    "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                    "TotalCodeSize": 80530636800i64
                },
                "AccountUsage": { "FunctionCount": account.functions.len(), "TotalCodeSize": 0 }
            }))
        }
        ["2015-03-31", "functions"] => {
            let start: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("Marker="))
                .map(|m| m.parse().map_err(|_| format!("Marker {m} was never given")))
                .transpose()?
                .unwrap_or(0);
            let page: Vec<serde_json::Value> = account
                .functions
                .iter()
                .skip(start)
                .take(PAGE)
                .map(|(name, _)| serde_json::json!({ "FunctionName": name }))
                .collect();
            let next = (start + PAGE < account.functions.len()).then(|| (start + PAGE).to_string());
            Ok(serde_json::json!({ "Functions": page, "NextMarker": next }))
        }
        ["2019-09-30", "functions", name, "concurrency"] => {
            let (_, reserved) = account
                .functions
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| format!("GetFunctionConcurrency of an unknown function {name}"))?;
            Ok(match reserved {
                Some(n) => serde_json::json!({ "ReservedConcurrentExecutions": n }),
                None => serde_json::json!({}),
            })
        }
        _ => Err(format!(
            "{} {} is no operation preflight uses",
            req.method(),
            req.uri()
        )),
    }
}
