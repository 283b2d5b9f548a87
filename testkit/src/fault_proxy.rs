//! A TCP proxy on loopback in front of a dependency (DynamoDB Local), for the tests and the
//! benchmark: it counts the HTTP requests sent through it (one DynamoDB round trip each), and
//! makes the dependency fail the way a regional incident does: answers late, never, cut off,
//! or with the connection reset. The fault is read each time the dependency sends bytes back,
//! so switching it affects connections already open (the SDK keeps its connections alive).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass unchanged.
    None,
    /// Every chunk of the answer is held this long first.
    Delay(Duration),
    /// The answer is never sent; the connection stays open.
    Stall,
    /// The connection is reset (RST) instead of answering.
    Reset,
    /// Half of the answer's first chunk is sent, then the connection is closed.
    Truncate,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<AtomicU64>,
    counted: Arc<tokio::sync::Notify>,
}

impl FaultProxy {
    /// Proxies to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> FaultProxy {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fault = Arc::new(Mutex::new(Fault::None));
        let requests = Arc::new(AtomicU64::new(0));
        let counted = Arc::new(tokio::sync::Notify::new());
        let (shared, counter, notify) = (fault.clone(), requests.clone(), counted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                tokio::spawn(relay(
                    client,
                    server,
                    shared.clone(),
                    counter.clone(),
                    notify.clone(),
                ));
            }
        });
        FaultProxy {
            url,
            fault,
            requests,
            counted,
        }
    }

    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// HTTP requests sent through the proxy so far.
    pub fn count(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Waits until `n` requests have been sent through the proxy.
    pub async fn requests_reach(&self, n: u64) {
        loop {
            let counted = self.counted.notified();
            if self.count() >= n {
                return;
            }
            counted.await;
        }
    }
}

/// Finds where HTTP/1.1 requests begin in a client's byte stream: a request is counted when its
/// head is complete; its body (`Content-Length`, as the AWS SDK sends) is skipped.
#[derive(Default)]
struct RequestFramer {
    head: Vec<u8>,
    body_left: usize,
}

impl RequestFramer {
    /// The requests whose heads `data` completes.
    fn feed(&mut self, mut data: &[u8]) -> u64 {
        let mut requests = 0;
        while !data.is_empty() {
            if self.body_left > 0 {
                let skip = self.body_left.min(data.len());
                self.body_left -= skip;
                data = &data[skip..];
                continue;
            }
            let before = self.head.len();
            self.head.extend_from_slice(data);
            let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") else {
                return requests;
            };
            requests += 1;
            self.body_left = content_length(&self.head[..end]);
            let used = end + 4 - before;
            self.head.clear();
            data = &data[used..];
        }
        requests
    }
}

/// How many leading bytes of `answers` are whole HTTP/1.1 responses with a `Content-Length`
/// (0: the first is not whole yet); None when one has another framing (chunked, or delimited
/// by the connection's end), which is then passed on as it comes.
fn whole_responses(answers: &[u8]) -> Option<usize> {
    let mut done = 0;
    loop {
        let rest = &answers[done..];
        let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Some(done);
        };
        let head = String::from_utf8_lossy(&rest[..end]).to_ascii_lowercase();
        if !head.contains("\r\ncontent-length:") {
            return None;
        }
        let whole = end + 4 + content_length(&rest[..end]);
        if rest.len() < whole {
            return Some(done);
        }
        done += whole;
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    fault: Arc<Mutex<Fault>>,
    requests: Arc<AtomicU64>,
    counted: Arc<tokio::sync::Notify>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let mut framer = RequestFramer::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let heads = framer.feed(&buf[..n]);
            if heads > 0 {
                requests.fetch_add(heads, Ordering::SeqCst);
                counted.notify_waiters();
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        // Bytes of answers not yet whole: without a fault, each answer is passed on in one
        // write, as an HTTP proxy would, so that the client's reads (and the CPU they cost,
        // which the benchmark measures) do not depend on how the dependency cut its writes.
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            let current = *fault.lock().unwrap();
            let ready = match current {
                Fault::None => match whole_responses(&pending) {
                    Some(0) => continue,
                    Some(len) => len,
                    None => pending.len(),
                },
                Fault::Delay(d) => {
                    tokio::time::sleep(d).await;
                    pending.len()
                }
                Fault::Stall => std::future::pending::<usize>().await,
                Fault::Reset => return,
                Fault::Truncate => {
                    let _ = client_write.write_all(&pending[..pending.len() / 2]).await;
                    return;
                }
            };
            if client_write.write_all(&pending[..ready]).await.is_err() {
                return;
            }
            pending.drain(..ready);
        }
    };
    tokio::select! {
        () = upstream => {}
        () = downstream => {}
    }
    if *fault.lock().unwrap() == Fault::Reset {
        // Dropping a socket whose linger is zero sends RST rather than FIN.
        if let Ok(stream) = client_write.reunite(client_read) {
            let _ = stream.set_zero_linger();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_however_the_bytes_arrive() {
        let one = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabcde";
        let stream: Vec<u8> = one
            .iter()
            .chain(one.iter())
            .chain(one.iter())
            .copied()
            .collect();
        for chunk in [1, 2, 7, 50, stream.len()] {
            let mut framer = RequestFramer::default();
            let n: u64 = stream.chunks(chunk).map(|c| framer.feed(c)).sum();
            assert_eq!(n, 3, "chunks of {chunk}");
        }
        // Answers are passed on whole: not before their body is complete, all that are.
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(whole_responses(&answer[..10]), Some(0));
        assert_eq!(whole_responses(&answer[..answer.len() - 1]), Some(0));
        let two: Vec<u8> = answer.iter().chain(answer.iter()).copied().collect();
        assert_eq!(whole_responses(&two), Some(two.len()));
        assert_eq!(
            whole_responses(&two[..answer.len() + 5]),
            Some(answer.len())
        );
        assert_eq!(
            whole_responses(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n"),
            None
        );
        // A body holding what looks like a head is not a request.
        let tricky = b"POST / HTTP/1.1\r\ncontent-length: 8\r\n\r\n\r\n\r\n\r\n\r\n";
        assert_eq!(RequestFramer::default().feed(tricky), 1);
    }
}
