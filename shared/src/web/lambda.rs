//! What every function's `main` does once its dependencies are built: report an init failure
//! (naming the setting) in the JSON log, or serve API Gateway events with the handler.
//!
//! Events are turned into requests here rather than by `lambda_http`: its conversion panics on
//! a body marked base64 that is not base64 (`aws_lambda_events`, "failed to decode aws base64
//! encoded body"), and with `panic = "abort"` a panic ends the process before the runtime
//! answers. Here no event can panic: an HTTP event (API Gateway HTTP API v2, REST API v1, or
//! anything with a method, path, headers or body) always becomes a request, its defects
//! recorded as a [`BodyDefect`] for the handler to answer in its caller's format; anything
//! else is an invocation error.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use base64::Engine;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::config::ConfigError;
use crate::web::http::BodyDefect;

/// Bodies longer than this (as sent in the event) are not decoded: every function accepts far
/// less (32 KiB at most), and a 6 MB event on a 128 MB function should cost no copy.
pub const MAX_EVENT_BODY_BYTES: usize = 1024 * 1024;

/// The result of init work run with `tokio::task::spawn_blocking`; a panic in it (which aborts
/// in release builds) is passed on as it is.
pub fn joined<T>(result: Result<T, tokio::task::JoinError>) -> T {
    result.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The span every line logged for one invocation carries, with the IDs a complaint can be
/// traced by: Lambda's request ID, API Gateway's `requestContext.requestId` ("" for an
/// invocation that is no API request, such as the scheduled sync), the X-Ray trace ID. At the
/// error level, so that it is enabled whatever `LOG_LEVEL` lets through: an info span would be
/// filtered out under `LOG_LEVEL=warn`, and the warnings and errors of the invocation, the
/// lines that matter most, would lose their IDs.
pub fn invocation_span(context: &lambda_runtime::Context, api_request_id: &str) -> tracing::Span {
    tracing::error_span!(
        "request",
        request_id = %context.request_id,
        api_request_id,
        trace_id = context.xray_trace_id.as_deref().unwrap_or(""),
    )
}

/// How long reporting an init failure to the Runtime API may take before the process exits
/// anyway (Lambda answers at once; a stalled endpoint must not hold the init).
const INIT_ERROR_REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// The error type an init failure is reported under: a setting missing or invalid, a secret
/// unreadable or not read in time.
pub const INIT_ERROR_TYPE: &str = "Runtime.ConfigError";

/// An init failure, logged and reported to the Runtime API (`POST
/// /2018-06-01/runtime/init/error`), so that the function's log and its `Errors` metric say why
/// instead of a bare `Runtime.ExitError`; then returned, for `main` to exit with. The message is
/// the error's own, which names the setting and never holds a secret value.
pub async fn init_failed(function: &'static str, e: ConfigError) -> Error {
    tracing::error!(function, error = %e, "init failed");
    let body = serde_json::json!({ "errorMessage": e.to_string(), "errorType": INIT_ERROR_TYPE });
    let reported = match crate::config::optional("AWS_LAMBDA_RUNTIME_API") {
        Some(api) => tokio::time::timeout(
            INIT_ERROR_REPORT_TIMEOUT,
            post_init_error(&api, &body.to_string()),
        )
        .await
        .unwrap_or_else(|_| Err("the Runtime API did not answer in time".to_string())),
        None => Err("AWS_LAMBDA_RUNTIME_API is not set".to_string()),
    };
    if let Err(reason) = reported {
        tracing::error!(
            function,
            reason,
            "init failure not reported to the Runtime API"
        );
    }
    e.into()
}

/// One `POST /2018-06-01/runtime/init/error` to the Runtime API at `api` (`host:port`, plain
/// HTTP on the instance), on a connection of its own: written by hand on tokio's `TcpStream`
/// because the runtime's pooled hyper client, instantiated a second time for this one call,
/// cost ~150 KB of every binary (bench/notes.md), and the binaries are near their 8 MiB budget.
async fn post_init_error(api: &str, body: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(api)
        .await
        .map_err(|e| format!("cannot connect to {api}: {e}"))?;
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: {INIT_ERROR_TYPE}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    // The status line is enough: "HTTP/1.1 202 Accepted".
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|e| e.to_string())?;
    match std::str::from_utf8(&head[9..12]) {
        Ok(status) if status.starts_with('2') => Ok(()),
        Ok(status) => Err(format!("the Runtime API answered {status}")),
        Err(_) => Err("the Runtime API's answer is not HTTP".to_string()),
    }
}

/// Flushes, on SIGTERM, the metrics counted and not yet written, then ends the process. Lambda
/// sends SIGTERM at shutdown (with a grace period) when an extension is registered (Lambda
/// Insights, the Parameters and Secrets extension, an enterprise's own): an invocation cut
/// short then still counts. Without an extension Lambda sends no signal and this waits idle;
/// registering a no-op extension to force the signal, as `lambda_runtime`'s graceful-shutdown
/// helper does, would cost every cold start a Runtime API round trip (bench/notes.md).
pub fn flush_on_shutdown(function: &'static str) {
    tokio::spawn(async move {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return;
        };
        if term.recv().await.is_some() {
            crate::metrics::flush();
            tracing::info!(function, "shutdown: metrics flushed");
            std::process::exit(0);
        }
    });
}

pub async fn run<S, H, Fut>(
    function: &'static str,
    init: Result<S, ConfigError>,
    handler: H,
) -> Result<(), Error>
where
    S: Send + Sync + 'static,
    H: Fn(Arc<S>, Request) -> Fut,
    Fut: Future<Output = Response<Body>> + Send,
{
    let svc = match init {
        Ok(svc) => Arc::new(svc),
        Err(e) => return Err(init_failed(function, e).await),
    };
    flush_on_shutdown(function);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<HttpEvent>| {
        let span = invocation_span(&event.context, event.payload.api_request_id().unwrap_or(""));
        let request = event.payload.into_request();
        let svc = svc.clone();
        let response = request.map(|req| handler(svc, req));
        async move {
            let answer = match response {
                Ok(response) => Ok(HttpResponse::from(response.await)),
                Err(e) => {
                    tracing::error!(function, error = %e, "invocation refused");
                    Err(Error::from(e))
                }
            };
            crate::metrics::flush();
            answer
        }
        .instrument(span)
    }))
    .await
}

/// The fields of an API Gateway proxy event that a handler needs, in both payload versions
/// (HTTP API 2.0: `requestContext.http.method`, `rawPath`; REST API 1.0: `httpMethod`, `path`,
/// `multiValueHeaders`). Every field is optional: what is missing is decided in
/// [`HttpEvent::into_request`], never by a panic.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HttpEvent {
    #[serde(rename = "rawPath")]
    raw_path: Option<String>,
    path: Option<String>,
    #[serde(rename = "httpMethod")]
    http_method: Option<String>,
    #[serde(rename = "requestContext")]
    request_context: Option<RequestContext>,
    headers: Option<HashMap<String, Option<String>>>,
    #[serde(rename = "multiValueHeaders")]
    multi_value_headers: Option<HashMap<String, Option<Vec<String>>>>,
    body: Option<String>,
    #[serde(rename = "isBase64Encoded")]
    is_base64_encoded: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestContext {
    http: Option<HttpContext>,
    #[serde(rename = "httpMethod")]
    http_method: Option<String>,
    /// API Gateway's ID of the request (a value of another type is ignored, never fatal).
    #[serde(rename = "requestId")]
    request_id: Option<serde_json::Value>,
    /// REST (1.0) events' caller identity (read for its `sourceIp` only; any shape is
    /// accepted, never fatal).
    identity: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct HttpContext {
    method: Option<String>,
    /// The client's address (HTTP API, 2.0); a value of another type is ignored.
    #[serde(rename = "sourceIp")]
    source_ip: Option<serde_json::Value>,
}

impl HttpEvent {
    /// API Gateway's `requestContext.requestId`, when the event has one.
    pub fn api_request_id(&self) -> Option<&str> {
        self.request_context.as_ref()?.request_id.as_ref()?.as_str()
    }
}

/// An event with nothing of an HTTP request in it (a schedule, an S3 notification, `{}`).
#[derive(Debug, thiserror::Error)]
#[error("not an API Gateway HTTP event: it has no method, path, headers or body")]
pub struct NotHttpEvent;

impl HttpEvent {
    /// The request the event describes. A missing or malformed method is left as GET (every
    /// handler answers it 405), a body that cannot be used becomes a [`BodyDefect`].
    pub fn into_request(self) -> Result<Request, NotHttpEvent> {
        let context = self.request_context.unwrap_or_default();
        let text = |v: Option<serde_json::Value>| match v {
            Some(serde_json::Value::String(s)) => s,
            _ => String::new(),
        };
        let meta = crate::web::envelope::RequestMeta {
            request_id: text(context.request_id.clone()),
            source_ip: text(
                context
                    .http
                    .as_ref()
                    .and_then(|h| h.source_ip.clone())
                    .or_else(|| context.identity.as_ref()?.get("sourceIp").cloned()),
            ),
        };
        let method = context
            .http
            .and_then(|h| h.method)
            .or(context.http_method)
            .or(self.http_method);
        let path = self.raw_path.or(self.path);
        if method.is_none() && path.is_none() && self.headers.is_none() && self.body.is_none() {
            return Err(NotHttpEvent);
        }

        let mut request = Request::new(Body::Empty);
        request.extensions_mut().insert(meta);
        if let Some(method) = method.and_then(|m| http::Method::from_bytes(m.as_bytes()).ok()) {
            *request.method_mut() = method;
        }
        if let Some(uri) = path.and_then(|p| p.parse::<http::Uri>().ok()) {
            *request.uri_mut() = uri;
        }
        let headers = request.headers_mut();
        let multi = self.multi_value_headers.into_iter().flatten();
        let single = self.headers.into_iter().flatten();
        // `headers` first, then `multiValueHeaders`: REST events put a header's last value in
        // the first and all its values in the second, so the second replaces the first.
        for (name, values) in single
            .map(|(n, v)| (n, v.into_iter().collect::<Vec<_>>()))
            .chain(multi.map(|(n, v)| (n, v.unwrap_or_default())))
        {
            let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            headers.remove(&name);
            for value in values {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.append(name.clone(), value);
                }
            }
        }

        match self.body {
            None => {}
            Some(body) if body.len() > MAX_EVENT_BODY_BYTES => {
                request
                    .extensions_mut()
                    .insert(BodyDefect::TooLarge(body.len()));
            }
            Some(body) if self.is_base64_encoded == Some(true) => {
                match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
                    Ok(bytes) => *request.body_mut() = Body::Binary(bytes),
                    Err(_) => {
                        request.extensions_mut().insert(BodyDefect::NotBase64);
                    }
                }
            }
            Some(body) if body.is_empty() => {}
            Some(body) => *request.body_mut() = Body::Text(body),
        }
        Ok(request)
    }
}

/// The proxy response, in the fields both payload versions share.
#[derive(Debug, Serialize)]
pub struct HttpResponse {
    #[serde(rename = "statusCode")]
    status_code: u16,
    headers: HashMap<String, String>,
    body: String,
    #[serde(rename = "isBase64Encoded")]
    is_base64_encoded: bool,
}

impl From<Response<Body>> for HttpResponse {
    fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let mut headers: HashMap<String, String> = HashMap::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            let Ok(value) = value.to_str() else { continue };
            headers
                .entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(value)
                })
                .or_insert_with(|| value.to_string());
        }
        let (body, is_base64_encoded) = match body {
            Body::Text(text) => (text, false),
            Body::Binary(bytes) => (
                base64::engine::general_purpose::STANDARD.encode(bytes),
                true,
            ),
            _ => (String::new(), false),
        };
        HttpResponse {
            status_code: parts.status.as_u16(),
            headers,
            body,
            is_base64_encoded,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(event: serde_json::Value) -> Result<Request, NotHttpEvent> {
        serde_json::from_value::<HttpEvent>(event)
            .expect("any JSON object deserializes")
            .into_request()
    }

    #[test]
    fn an_http_api_event_becomes_its_request() {
        let req = request(serde_json::json!({
            "version": "2.0", "rawPath": "/number-mapping",
            "requestContext": {"http": {"method": "POST"}},
            "headers": {"authorization": "Basic ZGV2OmRldg==", "content-type": "application/json"},
            "body": "eyJhIjoxfQ==", "isBase64Encoded": true
        }))
        .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri().path(), "/number-mapping");
        assert_eq!(req.headers()["authorization"], "Basic ZGV2OmRldg==");
        assert!(matches!(req.body(), Body::Binary(b) if b == br#"{"a":1}"#));
        assert!(req.extensions().get::<BodyDefect>().is_none());
    }

    #[test]
    fn the_requests_origin_is_read_from_either_event_version_and_never_fails() {
        let meta = |event: serde_json::Value| {
            request(event)
                .unwrap()
                .extensions()
                .get::<crate::web::envelope::RequestMeta>()
                .cloned()
                .unwrap()
        };
        let v2 = meta(serde_json::json!({
            "rawPath": "/x",
            "requestContext": {"requestId": "r2", "http": {"method": "POST", "sourceIp": "198.51.100.9"}}
        }));
        assert_eq!(
            (v2.request_id.as_str(), v2.source_ip.as_str()),
            ("r2", "198.51.100.9")
        );
        let v1 = meta(serde_json::json!({
            "path": "/x", "httpMethod": "POST",
            "requestContext": {"requestId": "r1", "identity": {"sourceIp": "203.0.113.5"}}
        }));
        assert_eq!(
            (v1.request_id.as_str(), v1.source_ip.as_str()),
            ("r1", "203.0.113.5")
        );
        // Odd shapes are no origin, not a failure.
        for context in [
            serde_json::json!({"identity": "x", "requestId": 7}),
            serde_json::json!({"identity": {"sourceIp": 5}, "http": {"sourceIp": []}}),
        ] {
            let odd = meta(serde_json::json!({"path": "/x", "requestContext": context}));
            assert_eq!(odd, crate::web::envelope::RequestMeta::default());
        }
    }

    #[test]
    fn a_rest_api_event_becomes_its_request() {
        let req = request(serde_json::json!({
            "resource": "/x", "path": "/identity/verify", "httpMethod": "POST",
            "headers": {"Authorization": "Basic a", "X-Many": "2"},
            "multiValueHeaders": {"Authorization": ["Basic a"], "X-Many": ["1", "2"]},
            "body": "{}", "isBase64Encoded": false
        }))
        .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.headers().get_all("authorization").iter().count(), 1);
        assert_eq!(req.headers().get_all("x-many").iter().count(), 2);
        assert!(matches!(req.body(), Body::Text(t) if t == "{}"));
    }

    #[test]
    fn defects_are_recorded_not_panicked_on() {
        let req = request(serde_json::json!({
            "rawPath": "/x", "requestContext": {"http": {"method": "POST"}},
            "body": "%%% not base64 %%%", "isBase64Encoded": true
        }))
        .unwrap();
        assert_eq!(req.extensions().get(), Some(&BodyDefect::NotBase64));

        let big = "a".repeat(MAX_EVENT_BODY_BYTES + 1);
        let req = request(serde_json::json!({"rawPath": "/x", "body": big})).unwrap();
        assert_eq!(
            req.extensions().get(),
            Some(&BodyDefect::TooLarge(MAX_EVENT_BODY_BYTES + 1))
        );

        // No requestContext, a method that is no method, headers that are no headers.
        let req = request(serde_json::json!({
            "rawPath": "not a path", "httpMethod": "PO ST",
            "headers": {"bad name": "x", "ok": "bad\u{1}value", "n": null}
        }))
        .unwrap();
        assert_eq!(req.method(), http::Method::GET);
        assert!(req.headers().is_empty());
    }

    #[test]
    fn events_without_anything_http_are_refused() {
        for event in [
            serde_json::json!({}),
            serde_json::json!({"source": "aws.scheduler", "detail-type": "Scheduled Event"}),
            serde_json::json!({"Records": [{"s3": {}}]}),
        ] {
            assert!(request(event).is_err());
        }
    }

    #[test]
    fn responses_keep_status_headers_and_body() {
        let mut resp = Response::new(Body::Text("{\"Code\":0}".into()));
        *resp.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        resp.headers_mut()
            .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
        let out = serde_json::to_value(HttpResponse::from(resp)).unwrap();
        assert_eq!(out["statusCode"], 405);
        assert_eq!(out["headers"]["allow"], "POST");
        assert_eq!(out["body"], "{\"Code\":0}");
        assert_eq!(out["isBase64Encoded"], false);
    }
}
