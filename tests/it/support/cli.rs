//! Driving the real `cc-callbacks` binary: the gateway on an ephemeral port, admin commands.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

pub struct Gateway {
    pub child: Child,
    pub addr: String,
    /// Everything the gateway has logged so far (its stderr).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Whether the gateway logs a line containing `needle` within 10 s (its pipes are read by
    /// threads of their own, so a line can trail the answer it was written before).
    pub fn logs(&self, needle: &str) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if self.log.lock().unwrap().contains(needle) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::yield_now();
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

pub fn command(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-callbacks"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("TABLE_NAME")
        .env_remove("NUMBER_MAPPING_CREDENTIALS")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    for (name, _) in std::env::vars() {
        if name.starts_with("FUYUN_") || name.ends_with("_CREDENTIALS") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Starts the gateway on an ephemeral port and waits for the line announcing its address.
pub fn start(data_dir: &std::path::Path) -> Gateway {
    spawn(command(data_dir))
}

pub fn spawn(mut cmd: Command) -> Gateway {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("gateway printed nothing").unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    // Keep draining stderr (start-up lines) and stdout (the request logs, JSON), so the child
    // never blocks on a full pipe, kept for the tests.
    let log = std::sync::Arc::new(std::sync::Mutex::new(first));
    let keep = |lines: Box<dyn Iterator<Item = std::io::Result<String>> + Send>| {
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = kept.lock().unwrap();
                log.push('\n');
                log.push_str(&line);
            }
        });
    };
    keep(Box::new(lines));
    keep(Box::new(BufReader::new(stdout).lines()));
    Gateway { child, addr, log }
}

/// A minimal HTTP/1.1 exchange: (status, body).
pub fn post(addr: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if cc_callbacks::functions::by_route(path).is_some() {
        let mut headers = http::HeaderMap::new();
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                headers.append(
                    http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        crate::support::openapi::contract().check_answer(path, status, &headers, body);
    }
    (status, body.to_string())
}
