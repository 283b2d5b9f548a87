//! A minimal Lambda Runtime API (2018-06-01) emulator: hands queued events to the function on
//! `GET /invocation/next` and collects its answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tokio::sync::{mpsc, oneshot};

type Reply = http::Response<Full<Bytes>>;

/// The function's answer to one invocation.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub body: Bytes,
    /// When the answer arrived.
    pub at: Instant,
}

struct State {
    events: tokio::sync::Mutex<mpsc::Receiver<(String, Bytes)>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    first_next: Mutex<Option<Instant>>,
    ready: tokio::sync::Notify,
    init_error: Mutex<Option<String>>,
}

pub struct RuntimeApi {
    /// `host:port`, for `AWS_LAMBDA_RUNTIME_API`.
    pub address: String,
    state: Arc<State>,
    queue: mpsc::Sender<(String, Bytes)>,
    next_id: std::sync::atomic::AtomicU64,
}

fn reply(status: u16, body: impl Into<Bytes>) -> Reply {
    http::Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

impl State {
    async fn answer(&self, req: http::Request<hyper::body::Incoming>) -> Reply {
        let path = req.uri().path().to_string();
        let error_type = req
            .headers()
            .get("lambda-runtime-function-error-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["2018-06-01", "runtime", "invocation", "next"] => {
                let first = {
                    let mut first_next = self.first_next.lock().unwrap();
                    let first = first_next.is_none();
                    first_next.get_or_insert_with(Instant::now);
                    first
                };
                if first {
                    self.ready.notify_one();
                }
                let Some((id, event)) = self.events.lock().await.recv().await else {
                    return reply(410, "shutting down");
                };
                http::Response::builder()
                    .status(200)
                    .header("lambda-runtime-aws-request-id", &id)
                    .header("lambda-runtime-deadline-ms", deadline_ms())
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    )
                    .header(
                        "lambda-runtime-trace-id",
                        "Root=1-00000000-000000000000000000000000",
                    )
                    .body(Full::new(event))
                    .unwrap()
            }
            ["2018-06-01", "runtime", "invocation", id, kind @ ("response" | "error")] => {
                if let Some(tx) = self.waiting.lock().unwrap().remove(*id) {
                    let _ = tx.send(Outcome {
                        ok: *kind == "response",
                        body,
                        at: Instant::now(),
                    });
                }
                reply(202, "{}")
            }
            // As documented: the error type in its header, and a JSON body
            // `{"errorMessage", "errorType"}`; anything else is refused and recorded as such.
            ["2018-06-01", "runtime", "init", "error"] => {
                let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
                let well_formed = parsed.as_ref().is_some_and(|v| {
                    v["errorMessage"].is_string()
                        && v["errorType"].is_string()
                        && error_type.as_deref() == v["errorType"].as_str()
                });
                let text = String::from_utf8_lossy(&body).to_string();
                if !well_formed {
                    *self.init_error.lock().unwrap() =
                        Some(format!("MALFORMED REPORT ({error_type:?}): {text}"));
                    return reply(400, "{}");
                }
                *self.init_error.lock().unwrap() = Some(text);
                reply(202, "{}")
            }
            _ => reply(404, "unknown runtime API path"),
        }
    }
}

fn deadline_ms() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    (now + 30_000).to_string()
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (queue, events) = mpsc::channel(16);
        let state = Arc::new(State {
            events: tokio::sync::Mutex::new(events),
            waiting: Mutex::new(HashMap::new()),
            first_next: Mutex::new(None),
            ready: tokio::sync::Notify::new(),
            init_error: Mutex::new(None),
        });
        let server = state.clone();
        let base = crate::serve_loopback(move |req| {
            let state = server.clone();
            async move { state.answer(req).await }
        })
        .await;
        RuntimeApi {
            address: base.trim_start_matches("http://").to_string(),
            state,
            queue,
            next_id: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// When the function first asked for an invocation (the end of its init).
    pub fn first_next(&self) -> Option<Instant> {
        *self.state.first_next.lock().unwrap()
    }

    /// Waits until the function has finished its init (its first `next`), at most `limit`.
    pub async fn wait_ready(&self, limit: std::time::Duration) -> Result<(), String> {
        if self.first_next().is_some() {
            return Ok(());
        }
        tokio::time::timeout(limit, self.state.ready.notified())
            .await
            .map_err(|_| match self.init_error() {
                Some(e) => format!("init failed: {e}"),
                None => "the function never asked for an invocation".to_string(),
            })
    }

    pub fn init_error(&self) -> Option<String> {
        self.state.init_error.lock().unwrap().clone()
    }

    /// Queues `event` and waits for the function's answer; returns it with the time it was
    /// queued.
    pub async fn invoke(&self, event: Bytes) -> Result<(Instant, Outcome), String> {
        let id = format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        self.state.waiting.lock().unwrap().insert(id.clone(), tx);
        let sent = Instant::now();
        self.queue
            .send((id, event))
            .await
            .map_err(|_| "runtime API closed".to_string())?;
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(30), rx)
            .await
            .map_err(|_| "the function did not answer within 30 s".to_string())?
            .map_err(|_| "the function went away".to_string())?;
        Ok((sent, outcome))
    }
}
