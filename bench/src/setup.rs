//! What a run needs first: the release binaries built, DynamoDB Local running.

use crate::scenarios::functions;
use crate::Args;

pub(crate) fn build(args: &Args) -> Result<(), String> {
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--release"]);
    for f in functions() {
        cmd.args(["-p", f]);
    }
    let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !functions().all(|f| args.bin_dir.join(f).exists()) {
        return Err("building the functions failed".into());
    }
    Ok(())
}

pub(crate) fn start_dynamodb() -> Result<(String, bool), String> {
    for var in ["CC_BENCH_DYNAMODB_ENDPOINT", "CC_TEST_DYNAMODB_ENDPOINT"] {
        if let Ok(e) = std::env::var(var) {
            return Ok((e, false));
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let out = std::process::Command::new("scripts/dynamodb-local")
        .args(["start", &port.to_string()])
        .output()
        .map_err(|e| format!("scripts/dynamodb-local: {e} (run from the repository root)"))?;
    if !out.status.success() {
        return Err(format!(
            "DynamoDB Local did not start (run scripts/setup first): {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        true,
    ))
}
