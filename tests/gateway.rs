//! The README's run command end to end: the real `cc-callbacks` binary serving on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

struct Gateway {
    child: Child,
    addr: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cc-callbacks"));
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env_remove("TABLE_NAME")
        .env_remove("NUMBER_MAPPING_CREDENTIALS")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    cmd
}

/// Starts the gateway on an ephemeral port and waits for the line announcing its address.
fn start(data_dir: &std::path::Path) -> Gateway {
    spawn(command(data_dir))
}

fn spawn(mut cmd: Command) -> Gateway {
    let mut child = cmd
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let first = lines.next().expect("gateway printed nothing").unwrap();
    let addr = first
        .split("http://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_string();
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Gateway { child, addr }
}

/// A minimal HTTP/1.1 exchange: (status, body).
fn post(addr: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, String) {
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
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn serves_number_mapping_with_dev_credentials_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let dev = cc_shared::auth::basic_header("dev", "dev");
    let (status, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        r#"{"Numbers":["13988888888","008613988888888"],"Mode":"PhoneToUID"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let resp: serde_json::Value = serde_json::from_str(&body).unwrap();
    let uid = resp["Results"][0]["Value"].as_str().unwrap().to_string();
    assert_eq!(resp["Results"][1]["Value"], uid.as_str());

    let (status, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        &format!(r#"{{"Numbers":["{uid}"],"Mode":"UIDToPhone"}}"#),
    );
    assert_eq!(status, 200);
    assert!(body.contains("008613988888888"), "{body}");

    let (status, _) = post(&gw.addr, "/number-mapping", None, "{}");
    assert_eq!(status, 401);
    let (status, _) = post(&gw.addr, "/nowhere", Some(&dev), "{}");
    assert_eq!(status, 404);

    // The store is the file under --data-dir: a restarted gateway answers with the same ID.
    drop(gw);
    let gw = start(dir.path());
    let (_, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#,
    );
    assert!(body.contains(&uid), "{body}");
}

#[test]
fn refuses_dev_credentials_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NUMBER_MAPPING_CREDENTIALS"), "{stderr}");
}

#[test]
fn configured_credentials_replace_dev_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env(
        "NUMBER_MAPPING_CREDENTIALS",
        cc_shared::auth::entry_for("tencent", "pw-1"),
    );
    let gw = spawn(cmd);
    let body = r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#;
    let dev = cc_shared::auth::basic_header("dev", "dev");
    assert_eq!(post(&gw.addr, "/number-mapping", Some(&dev), body).0, 401);
    let good = cc_shared::auth::basic_header("tencent", "pw-1");
    assert_eq!(post(&gw.addr, "/number-mapping", Some(&good), body).0, 200);
}

#[test]
fn credentials_new_prints_a_password_and_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["credentials", "new", "--user", "tencent"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (give it to the caller, then forget it): "))
        .unwrap();
    let entry = stdout
        .lines()
        .find_map(|l| l.strip_prefix("entry (append to the function's *_CREDENTIALS parameter): "))
        .unwrap();
    assert_eq!(entry, cc_shared::auth::entry_for("tencent", password));
    assert!(password.len() >= 32);
}
