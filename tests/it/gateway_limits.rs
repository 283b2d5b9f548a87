//! The local gateway against hostile or broken clients and a stalled store, on loopback only,
//! every loop bounded in count and time: slow headers, slow and short bodies, malformed
//! chunking, idle keep-alive connections, a flood of connections, exhausted file descriptors,
//! DynamoDB that never answers. The gateway's timeouts are shortened through their
//! environment variables (README, "Limits") so that each case takes about a second.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use support::cli::{command, post, spawn, Gateway};
use testkit::fault_proxy::{Fault, FaultProxy};

const BODY: &str = r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#;

fn dev() -> String {
    cc_shared::web::auth::basic_header("dev", "dev")
}

fn with_short_timeouts(mut cmd: Command) -> Command {
    cmd.env("CC_GATEWAY_HEADER_TIMEOUT_MS", "1000")
        .env("CC_GATEWAY_BODY_TIMEOUT_MS", "1000");
    cmd
}

/// Reads until the gateway closes the connection (or `limit` passes): what it sent, and when
/// it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buf) {
            Ok(0) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                )
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                return (
                    String::from_utf8_lossy(&got).into(),
                    Some(started.elapsed()),
                )
            }
        }
    }
    (String::from_utf8_lossy(&got).into(), None)
}

fn start_short(dir: &std::path::Path) -> Gateway {
    spawn(with_short_timeouts(command(dir)))
}

#[test]
fn headers_sent_a_byte_at_a_time_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start_short(dir.path());
    let mut stream = TcpStream::connect(&gw.addr).unwrap();
    let request = format!(
        "POST /number-mapping HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n",
        dev()
    );
    let started = Instant::now();
    let mut closed = false;
    // One byte every 100 ms: 60 bytes would take 6 s; the gateway allows 1 s for headers.
    for byte in request.as_bytes().iter().take(60) {
        if stream.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        let (_, at) = read_until_closed(&mut stream, Duration::from_millis(100));
        if at.is_some() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a slow client held the connection for {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(gw.child.try_wait().unwrap().is_none());
}

#[test]
fn short_slow_and_malformed_bodies_get_a_400_in_the_callers_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start_short(dir.path());
    let auth = dev();
    let cases = [
        (
            "Content-Length 100, 6 bytes sent",
            format!("POST /number-mapping HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 100\r\n\r\n{{\"Numb"),
        ),
        (
            "malformed chunked encoding",
            format!("POST /number-mapping HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk\r\n"),
        ),
        (
            "chunked body never finished",
            format!("POST /number-mapping HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{{\"Num\r\n"),
        ),
    ];
    for (what, raw) in cases {
        let mut stream = TcpStream::connect(&gw.addr).unwrap();
        stream.write_all(raw.as_bytes()).unwrap();
        let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
        assert!(closed.is_some(), "{what}: connection held open");
        assert!(response.starts_with("HTTP/1.1 400"), "{what}: {response}");
        assert!(response.contains("\"Code\":400"), "{what}: {response}");
        assert!(
            closed.unwrap() < Duration::from_secs(3),
            "{what}: answered after {closed:?}"
        );
    }
    // Without credentials the body is not even looked at.
    let mut stream = TcpStream::connect(&gw.addr).unwrap();
    stream
        .write_all(b"POST /number-mapping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .unwrap();
    let (response, _) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert!(response.starts_with("HTTP/1.1 401"), "{response}");
    assert!(gw.child.try_wait().unwrap().is_none());
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start_short(dir.path());
    let mut stream = TcpStream::connect(&gw.addr).unwrap();
    write!(
        stream,
        "POST /number-mapping HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n{BODY}",
        dev(),
        BODY.len()
    )
    .unwrap();
    let (response, closed) = read_until_closed(&mut stream, Duration::from_secs(5));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let closed = closed.expect("an idle keep-alive connection was never closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[test]
fn a_flood_of_idle_connections_does_not_lock_out_callers() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = with_short_timeouts(command(dir.path()));
    cmd.env("CC_GATEWAY_MAX_CONNECTIONS", "32");
    let mut gw = spawn(cmd);
    // 400 idle connections, far more than the 32 served at once: they wait in the backlog
    // or are closed after the header timeout; a real caller gets through.
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect(&gw.addr).ok())
        .collect();
    assert!(idle.len() >= 100, "only {} connections opened", idle.len());
    let started = Instant::now();
    let (status, body) = post(&gw.addr, "/number-mapping", Some(&dev()), BODY);
    assert_eq!(status, 200, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    assert!(gw.child.try_wait().unwrap().is_none());
}

#[test]
fn running_out_of_file_descriptors_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    // The gateway under a 64-descriptor limit, allowed 1000 connections: accept fails with
    // EMFILE, which must be logged and retried, never end the process.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -n 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_cc-callbacks"))
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("TABLE_NAME")
        .env_remove("NUMBER_MAPPING_CREDENTIALS")
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .env("CC_GATEWAY_MAX_CONNECTIONS", "1000")
        .env("CC_GATEWAY_HEADER_TIMEOUT_MS", "1000");
    let mut gw = spawn(cmd);
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(&gw.addr).ok())
        .collect();
    assert!(idle.len() >= 100, "only {} connections opened", idle.len());
    drop(idle);
    let (status, body) = post(&gw.addr, "/number-mapping", Some(&dev()), BODY);
    assert_eq!(status, 200, "{body}");
    assert!(gw.child.try_wait().unwrap().is_none(), "the gateway exited");
}

/// The gateway on DynamoDB that stalls, answers late, resets or truncates: Tencent's
/// `{"Code": 503}` within the store budget (3 s), and 200 again once DynamoDB recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_dynamodb_gets_503_from_the_gateway_in_time() {
    let proxy = FaultProxy::start(&support::dynamodb_endpoint()).await;
    let (store, _) = support::dynamo_store().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("TABLE_NAME", store.table())
        .env("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("IDENTITY_PIN_PEPPER", "a-local-pepper-of-at-least-32-bytes");
    let gw = spawn(cmd);
    let addr = gw.addr.clone();
    let call = move || {
        let addr = addr.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let answer = post(&addr, "/number-mapping", Some(&dev()), BODY);
            (answer, started.elapsed())
        })
    };
    for fault in [
        Fault::Stall,
        Fault::Delay(Duration::from_secs(30)),
        Fault::Reset,
        Fault::Truncate,
    ] {
        proxy.set(fault);
        let ((status, body), took) = call().await.unwrap();
        assert_eq!(status, 503, "{fault:?}: {body}");
        assert!(body.contains("\"Code\":503"), "{body}");
        assert!(took < Duration::from_millis(4500), "{fault:?}: {took:?}");
    }
    proxy.set(Fault::None);
    let ((status, body), _) = call().await.unwrap();
    assert_eq!(status, 200, "{body}");
    drop(gw);
}
