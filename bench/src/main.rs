//! cc-bench: runs each function's binary exactly as Lambda runs it (a Runtime API emulator,
//! the usual `AWS_LAMBDA_*` variables), against DynamoDB Local behind a counting proxy and the
//! vendor fakes, and writes BENCHMARKS.md: init, first-invoke and warm latency, DynamoDB round
//! trips per invocation, peak RSS and binary sizes, with warm latency also as a ratio to a raw
//! BatchGetItem floor measured in the same run (see `floor`).
//!
//! `cargo run --release -p cc-bench` (full run, ~1,000 invocations a scenario), or
//! `cargo run -p cc-bench -- --smoke --bin-dir target/debug --no-build --out target/bench-smoke.md`
//! (what the test command runs so the harness cannot rot: few invocations, no budget verdicts).
//! `--only <function>` runs one function's scenarios, `--iterations N` sets the warm count.

mod floor;
mod proxy;
use testkit::runtime_api;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::{AgentStore, IdentityStore, MappingStore};

const FUNCTIONS: &[&str] = &[
    "number-mapping",
    "identity-verification",
    "token-exchange",
    "agent-sync",
];
/// Cold starts measured per function (and agent-sync role) for the init budget.
const COLD_STARTS: usize = 20;
const PEPPER: &str = "bench-pepper-of-at-least-32-bytes-long";
const DEV_ENTRY: &str =
    "dev:sha256:ef260e9aa3c673af240d17a2660480361a8e081d1ffeca2a5ed0e3219fc18567";

struct Args {
    iterations: usize,
    smoke: bool,
    bin_dir: PathBuf,
    out: PathBuf,
    build: bool,
    /// Run only the scenarios of functions whose name contains this (iterating on one function).
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        iterations: 1000,
        smoke: false,
        bin_dir: PathBuf::from("target/release"),
        out: PathBuf::from("BENCHMARKS.md"),
        build: true,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => {
                args.smoke = true;
                args.iterations = 20;
            }
            "--iterations" => {
                args.iterations = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|n| *n >= 1)
                    .ok_or("--iterations takes a positive number")?
            }
            "--bin-dir" => args.bin_dir = it.next().ok_or("--bin-dir takes a directory")?.into(),
            "--out" => args.out = it.next().ok_or("--out takes a file")?.into(),
            "--no-build" => args.build = false,
            "--only" => args.only = Some(it.next().ok_or("--only takes a function name")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    ms(a) / ms(b).max(1e-9)
}

/// An API Gateway HTTP API (v2) event.
fn http_event(path: &str, body: &str) -> Bytes {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": "Basic ZGV2OmRldg==", "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench",
            "domainPrefix": "bench", "http": {"method": "POST", "path": path,
            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cc-bench"},
            "requestId": "bench", "routeKey": format!("POST {path}"), "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    });
    Bytes::from(event.to_string())
}

/// Checks a function's answer (its JSON output).
type Check = Box<dyn Fn(&serde_json::Value) -> Result<(), String>>;

/// One measured scenario.
struct Scenario {
    function: &'static str,
    name: String,
    env: Vec<(String, String)>,
    /// The event of invocation `i`.
    event: Box<dyn Fn(usize) -> Bytes>,
    /// Checks an answer (the function's JSON output).
    check: Check,
    /// Round trips per warm invocation the budget allows, if it sets one.
    rt_budget: Option<f64>,
    /// The raw BatchGetItem floor to compare warm latency with.
    floor: Option<FloorSpec>,
    /// Whether this scenario's configuration stands for its function in the cold-start series.
    cold_starts: bool,
}

/// The keys (partition keys, sort key `MAP`) and attribute of a scenario's floor read.
struct FloorSpec {
    pks: Vec<String>,
    attr: &'static str,
}

#[derive(Default)]
struct Result1 {
    function: &'static str,
    name: String,
    init: Duration,
    first: Duration,
    p50: Duration,
    p99: Duration,
    /// The handler's own p50, from its log lines.
    handler: Option<Duration>,
    round_trips: f64,
    first_round_trips: u64,
    rss_kb: u64,
    /// The function's CPU time per warm invocation, µs (all its threads).
    cpu_us: Option<f64>,
    rt_budget: Option<f64>,
    /// Key count of the floor read, if the scenario has one.
    floor_keys: Option<usize>,
    /// The out-of-process floor sampled between this scenario's warm invocations (p50, p99).
    floor: Option<(Duration, Duration)>,
}

fn http_ok(v: &serde_json::Value) -> Result<serde_json::Value, String> {
    let status = v["statusCode"].as_u64().unwrap_or(0);
    let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap_or("null"))
        .map_err(|_| format!("not an HTTP answer: {v}"))?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body)
}

/// CPU time the process has used so far, all its threads (`/proc/<pid>/task/*/schedstat`, ns).
fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The function's stdout (its JSON log lines, with each request's own `latency_ms`) goes to
/// `target/bench-logs/<function>-<scenario>.log`, to compare with the latency seen from outside.
fn log_path(s: &Scenario) -> PathBuf {
    let name: String = format!("{}-{}", s.function, s.name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Path::new("target/bench-logs").join(format!("{name}.log"))
}

fn log_file(s: &Scenario) -> Result<Stdio, String> {
    let path = log_path(s);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Stdio::from(file))
}

/// The median of the `latency_ms` the function logged itself for its warm invocations: its own
/// handling time, without the Runtime API exchange.
fn handler_p50(s: &Scenario) -> Option<Duration> {
    let text = std::fs::read_to_string(log_path(s)).ok()?;
    let mut v: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["message"] == "request" || l["message"] == "sync")
        .filter_map(|l| l["latency_ms"].as_f64())
        .skip(1) // the first invocation
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Duration::from_secs_f64(v[v.len() / 2] / 1000.0))
}

/// Starts a function's binary as Lambda would, against the Runtime API emulator `api`.
fn spawn_function(
    args: &Args,
    base_env: &[(String, String)],
    s: &Scenario,
    api: &runtime_api::RuntimeApi,
    stdout: Stdio,
) -> Result<(tokio::process::Child, Instant), String> {
    let mut cmd = tokio::process::Command::new(args.bin_dir.join(s.function));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", s.function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", s.function),
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
        .envs(base_env.iter().cloned())
        .envs(s.env.iter().cloned())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e}",
            args.bin_dir.join(s.function).display()
        )
    })?;
    Ok((child, spawned))
}

/// Waits for the function's first `GET .../invocation/next`: its init duration.
async fn wait_init(
    api: &runtime_api::RuntimeApi,
    child: &mut tokio::process::Child,
    spawned: Instant,
) -> Result<Duration, String> {
    let stderr = child.stderr.take();
    if let Err(e) = api.wait_ready(Duration::from_secs(30)).await {
        let _ = child.kill().await;
        let mut text = String::new();
        if let Some(mut err) = stderr {
            use tokio::io::AsyncReadExt;
            let _ = err.read_to_string(&mut text).await;
        }
        return Err(format!("{e}; its stderr: {}", text.trim()));
    }
    api.first_next()
        .map(|t| t - spawned)
        .ok_or_else(|| "the function never asked for an invocation".into())
}

/// Init durations of `n` cold starts of a scenario's function, sorted.
async fn cold_starts(
    args: &Args,
    base_env: &[(String, String)],
    s: &Scenario,
    n: usize,
) -> Result<Vec<Duration>, String> {
    let mut inits = Vec::with_capacity(n);
    for _ in 0..n {
        let api = runtime_api::RuntimeApi::start().await;
        let (mut child, spawned) = spawn_function(args, base_env, s, &api, Stdio::null())?;
        inits.push(wait_init(&api, &mut child, spawned).await?);
        let _ = child.kill().await;
        let _ = child.wait().await;
    }
    inits.sort();
    Ok(inits)
}

async fn run_scenario(
    args: &Args,
    base_env: &[(String, String)],
    proxy: &proxy::CountingProxy,
    table: &str,
    s: &Scenario,
) -> Result<Result1, String> {
    let api = runtime_api::RuntimeApi::start().await;
    let (mut child, spawned) = spawn_function(args, base_env, s, &api, log_file(s)?)?;
    let pid = child.id().unwrap_or(0);

    let check = |i: usize, outcome: &runtime_api::Outcome| -> Result<(), String> {
        if !outcome.ok {
            return Err(format!(
                "invocation {i} failed: {}",
                String::from_utf8_lossy(&outcome.body)
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&outcome.body)
            .map_err(|_| format!("invocation {i}: answer is not JSON"))?;
        (s.check)(&v).map_err(|e| format!("invocation {i}: {e}"))
    };

    // Init first (its DynamoDB priming included), then the first invocation on its own.
    let init = wait_init(&api, &mut child, spawned).await?;
    let before = proxy.count();
    let (sent, first) = api.invoke((s.event)(0)).await?;
    let first_round_trips = proxy.count() - before;
    check(0, &first)?;

    let mut worker = match &s.floor {
        Some(f) => Some(floor::FloorWorker::start(&proxy.url, table, f.attr, &f.pks).await?),
        None => None,
    };
    let mut warm = Vec::with_capacity(args.iterations);
    let mut floor_samples = Vec::with_capacity(args.iterations);
    let mut calls = 0;
    let cpu_before = cpu_ns(pid);
    for i in 1..=args.iterations {
        let before = proxy.count();
        let (sent, outcome) = api.invoke((s.event)(i)).await?;
        calls += proxy.count() - before;
        check(i, &outcome)?;
        warm.push(outcome.at - sent);
        if let Some(w) = worker.as_mut() {
            floor_samples.push(w.sample().await?);
        }
    }
    let round_trips = calls as f64 / args.iterations as f64;
    let cpu_us = match (cpu_before, cpu_ns(pid)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e3 / args.iterations as f64),
        _ => None,
    };
    let rss_kb = peak_rss_kb(pid);
    let _ = child.kill().await;
    let _ = child.wait().await;
    if let Some(w) = worker {
        w.stop().await;
    }
    let handler = handler_p50(s);
    warm.sort();
    floor_samples.sort();
    let floor = (!floor_samples.is_empty()).then(|| {
        (
            percentile(&floor_samples, 50),
            percentile(&floor_samples, 99),
        )
    });
    Ok(Result1 {
        function: s.function,
        name: s.name.clone(),
        init,
        first: first.at - sent,
        p50: percentile(&warm, 50),
        p99: percentile(&warm, 99),
        handler,
        round_trips,
        first_round_trips,
        rss_kb,
        cpu_us,
        rt_budget: s.rt_budget,
        floor_keys: s.floor.as_ref().map(|f| f.pks.len()),
        floor,
    })
}

/// The in-harness floor: one raw BatchGetItem of `pks` from the harness's own warm client,
/// through the same proxy. Returns (p50, p99).
async fn harness_floor(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pks: &[String],
    iterations: usize,
) -> Result<(Duration, Duration), String> {
    let request = floor::request(pks, "uid")?;
    let mut times = Vec::with_capacity(iterations);
    for i in 0..=iterations {
        let t = Instant::now();
        floor::read_once(client, table, &request, pks.len()).await?;
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    times.sort();
    Ok((percentile(&times, 50), percentile(&times, 99)))
}

fn build(args: &Args) -> Result<(), String> {
    let mut cmd =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--release"]);
    for f in FUNCTIONS {
        cmd.args(["-p", f]);
    }
    let status = cmd.status().map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() || !args.bin_dir.join(FUNCTIONS[0]).exists() {
        return Err("building the functions failed".into());
    }
    Ok(())
}

fn start_dynamodb() -> Result<(String, bool), String> {
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

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = if argv.get(1).map(String::as_str) == Some(floor::WORKER_FLAG) {
        floor::worker_main(&argv[2..])
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(run()))
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cc-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let args = parse_args()?;
    if args.build {
        build(&args)?;
    }
    let (endpoint, started) = start_dynamodb()?;
    let result = bench(&args, &endpoint).await;
    if started {
        let _ = std::process::Command::new("scripts/dynamodb-local")
            .arg("stop")
            .status();
    }
    result
}

async fn bench(args: &Args, endpoint: &str) -> Result<(), String> {
    let proxy = proxy::CountingProxy::start(endpoint).await;
    let table = format!(
        "cc-bench-{}",
        cc_shared::domain::uid::Uid::generate().map_err(|e| e.to_string())?
    );
    let client = floor::client(&proxy.url);
    let store = DynamoStore::new(client.clone(), table.clone());
    store.create_table().await.map_err(|e| e.to_string())?;

    // Seed: 100 known numbers, a PIN, the agent directory and a link.
    let phones =
        cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).map_err(|e| e.to_string())?;
    let numbers: Vec<String> = (0..100).map(|i| format!("1390000{i:04}")).collect();
    let keys = numbers
        .iter()
        .map(|n| phones.normalize(n).map_err(|e| format!("seed number: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let uids = store.create_uids(&keys).await.map_err(|e| e.to_string())?;
    let uid_list: Vec<String> = keys.iter().map(|k| uids[k].to_string()).collect();
    let phone_pks: Vec<String> = keys
        .iter()
        .map(|k| format!("PHONE#{}", k.as_str()))
        .collect();
    let pepper = cc_shared::domain::identity::Pepper::new(PEPPER.as_bytes().to_vec())?;
    store
        .put_pins(&[(keys[0].clone(), pepper.pin_digest(&keys[0], "2468"))])
        .await
        .map_err(|e| e.to_string())?;
    let cec = testkit::fake_cec::FakeCec::start().await;
    let cec_client = agent_sync::cec_client::CecClient::new(agent_sync::cec_client::CecSettings {
        base_url: cec.base_url.clone(),
        agent_info_path: testkit::fake_cec::AGENTS_PATH.into(),
        app_key: testkit::fake_cec::APP_KEY.into(),
        app_secret: testkit::fake_cec::APP_SECRET.into(),
        token_expire_seconds: 3600,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
    })
    .map_err(|e| e.to_string())?;
    agent_sync::sync(&store, &cec_client, &cc_shared::domain::clock::SystemClock)
        .await
        .map_err(|e| e.to_string())?;
    store
        .link_account("alice", "1002")
        .await
        .map_err(|e| e.to_string())?;
    let keys_pair = testkit::fake_idp::KeyPair::generate();
    let idp = testkit::fake_idp::FakeIdp::start(testkit::fake_idp::JwtExpectation {
        key: testkit::fake_idp::decoding_key(&keys_pair),
        exp_millis: false,
    })
    .await;

    let base_env: Vec<(String, String)> = [
        ("TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("LOG_LEVEL", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mapping_ok = |v: &serde_json::Value| -> Result<(), String> {
        let body = http_ok(v)?;
        match body["Code"].as_i64() {
            Some(0)
                if body["Results"].as_array().is_some_and(|r| {
                    r.iter()
                        .all(|x| x["Value"].as_str().is_some_and(|s| !s.is_empty()))
                }) =>
            {
                Ok(())
            }
            _ => Err(format!("unexpected answer {body}")),
        }
    };

    let mut scenarios: Vec<Scenario> = Vec::new();
    for (n, prime) in [(1, true), (10, true), (100, true), (10, false)] {
        let body = serde_json::json!({"Numbers": &numbers[..n], "Mode": "PhoneToUID"}).to_string();
        scenarios.push(Scenario {
            function: "number-mapping",
            name: format!(
                "PhoneToUID, {n} known{}",
                if prime { "" } else { " (no priming at init)" }
            ),
            env: env(&[
                ("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY),
                ("DYNAMODB_PRIME", if prime { "true" } else { "false" }),
            ]),
            event: Box::new(move |_| http_event("/number-mapping", &body)),
            check: Box::new(mapping_ok),
            rt_budget: Some(1.0),
            floor: Some(FloorSpec {
                pks: phone_pks[..n].to_vec(),
                attr: "uid",
            }),
            cold_starts: n == 1,
        });
    }
    scenarios.push(Scenario {
        function: "number-mapping",
        name: "PhoneToUID, 10 new".into(),
        env: env(&[("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY)]),
        event: Box::new(|i| {
            let fresh: Vec<String> = (0..10)
                .map(|j| format!("1{:010}", 5_000_000_000u64 + (i * 10 + j) as u64))
                .collect();
            http_event(
                "/number-mapping",
                &serde_json::json!({"Numbers": fresh, "Mode": "PhoneToUID"}).to_string(),
            )
        }),
        check: Box::new(mapping_ok),
        rt_budget: Some(1.0 + (10f64 / 50.0).ceil()),
        floor: None,
        cold_starts: false,
    });
    {
        let body =
            serde_json::json!({"Numbers": &uid_list[..10], "Mode": "UIDToPhone"}).to_string();
        scenarios.push(Scenario {
            function: "number-mapping",
            name: "UIDToPhone, 10 IDs".into(),
            env: env(&[("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY)]),
            event: Box::new(move |_| http_event("/number-mapping", &body)),
            check: Box::new(mapping_ok),
            rt_budget: Some(1.0),
            floor: Some(FloorSpec {
                pks: uid_list[..10].iter().map(|u| format!("UID#{u}")).collect(),
                attr: "phone",
            }),
            cold_starts: false,
        });
    }
    {
        let body = serde_json::json!({"calldata": {"verifyServiceNo": numbers[0], "verifyWorkNo": "1002", "verifyCode": "2468"}}).to_string();
        scenarios.push(Scenario {
            function: "identity-verification",
            name: "verify, right PIN".into(),
            env: env(&[
                ("IDENTITY_VERIFY_CREDENTIALS", DEV_ENTRY),
                ("IDENTITY_PIN_PEPPER", PEPPER),
            ]),
            event: Box::new(move |_| http_event("/identity/verify", &body)),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                (body["calldata"]["data"]["verifyResult"] == 1)
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: None,
            floor: None,
            cold_starts: true,
        });
    }
    {
        let body = serde_json::json!({"mode": "jwt", "accountName": "agent007"}).to_string();
        scenarios.push(Scenario {
            function: "token-exchange",
            name: "JWT mode (first upstream, then cached)".into(),
            env: env(&[
                ("TOKEN_EXCHANGE_CREDENTIALS", DEV_ENTRY),
                ("FUYUN_TOKEN_URL", idp.url.as_str()),
                ("FUYUN_CLIENT_ID", testkit::fake_idp::CLIENT_ID),
                ("FUYUN_CLIENT_SECRET", testkit::fake_idp::CLIENT_SECRET),
                ("FUYUN_SCOPE", testkit::fake_idp::SCOPE),
                ("FUYUN_REDIRECT_URL", testkit::fake_idp::REDIRECT_URL),
                ("FUYUN_ISSUER", testkit::fake_idp::ISSUER),
                ("FUYUN_PRIVATE_KEY", keys_pair.private_base64.as_str()),
            ]),
            event: Box::new(move |_| http_event("/token-exchange", &body)),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                body["access_token"]
                    .is_string()
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: None,
            floor: None,
            cold_starts: true,
        });
    }
    let cec_env = env(&[
        ("AGENT_DIRECTORY_CREDENTIALS", DEV_ENTRY),
        ("CEC_BASE_URL", cec.base_url.as_str()),
        ("CEC_AGENT_INFO_PATH", testkit::fake_cec::AGENTS_PATH),
        ("CEC_APP_KEY", testkit::fake_cec::APP_KEY),
        ("CEC_APP_SECRET", testkit::fake_cec::APP_SECRET),
    ]);
    scenarios.push(Scenario {
        function: "agent-sync",
        name: "softphone details (live from the CEC)".into(),
        env: [cec_env.clone(), env(&[("AGENT_SYNC_ROLE", "softphone")])].concat(),
        event: Box::new(|_| http_event("/agents/softphone", r#"{"account":"alice"}"#)),
        check: Box::new(|v| {
            let body = http_ok(v)?;
            (body["workNo"] == "1002")
                .then_some(())
                .ok_or(format!("{body}"))
        }),
        rt_budget: None,
        floor: None,
        cold_starts: true,
    });
    scenarios.push(Scenario {
        function: "agent-sync",
        name: "scheduled sync, nothing changed".into(),
        env: [cec_env, env(&[("AGENT_SYNC_ROLE", "schedule")])].concat(),
        event: Box::new(|_| {
            Bytes::from_static(
                br#"{"detail-type":"Scheduled Event","source":"aws.scheduler","detail":{}}"#,
            )
        }),
        check: Box::new(|v| {
            (v["unchanged"] == 3 && v["added"] == 0)
                .then_some(())
                .ok_or(format!("{v}"))
        }),
        rt_budget: None,
        floor: None,
        cold_starts: true,
    });

    // Warm DynamoDB Local's JVM up first, so that the first scenarios do not pay its JIT.
    for n in [1usize, 10, 100] {
        harness_floor(&client, &table, &phone_pks[..n], args.iterations.min(300)).await?;
    }

    let selected: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| {
            args.only
                .as_deref()
                .is_none_or(|only| s.function.contains(only))
        })
        .collect();
    let mut inits = Vec::new();
    for s in selected.iter().copied().filter(|s| s.cold_starts) {
        eprintln!("cc-bench: {} / cold starts", s.function);
        let n = if args.smoke { 3 } else { COLD_STARTS };
        let series = cold_starts(args, &base_env, s, n)
            .await
            .map_err(|e| format!("{} / cold starts: {e}", s.function))?;
        inits.push((s, series));
    }
    let mut results = Vec::new();
    for s in selected.iter().copied() {
        eprintln!("cc-bench: {} / {}", s.function, s.name);
        let r = run_scenario(args, &base_env, &proxy, &table, s)
            .await
            .map_err(|e| format!("{} / {}: {e}", s.function, s.name))?;
        results.push(r);
    }
    let mut floors = std::collections::BTreeMap::new();
    for n in [1usize, 10, 100] {
        floors.insert(
            n,
            harness_floor(&client, &table, &phone_pks[..n], args.iterations).await?,
        );
    }
    idp.assert_no_violations();
    cec.assert_no_violations();

    let inits: Vec<ColdStarts> = inits
        .into_iter()
        .map(|(s, series)| ColdStarts {
            label: match s.env.iter().find(|(k, _)| k == "AGENT_SYNC_ROLE") {
                Some((_, role)) => format!("{} ({role})", s.function),
                None => s.function.to_string(),
            },
            series,
        })
        .collect();
    let report = report(args, &inits, &results, &floors);
    std::fs::write(&args.out, report).map_err(|e| format!("{}: {e}", args.out.display()))?;
    eprintln!("cc-bench: wrote {}", args.out.display());
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{cpu}, {cores} cores, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

fn verdict(ok: bool, smoke: bool) -> &'static str {
    match (smoke, ok) {
        (true, _) => "(smoke)",
        (false, true) => "pass",
        (false, false) => "**FAIL**",
    }
}

/// Init durations of one function's (or agent-sync role's) cold starts, sorted.
struct ColdStarts {
    label: String,
    series: Vec<Duration>,
}

fn report(
    args: &Args,
    inits: &[ColdStarts],
    results: &[Result1],
    floors: &std::collections::BTreeMap<usize, (Duration, Duration)>,
) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Benchmarks\n");
    if args.smoke {
        let _ = writeln!(o, "_Smoke run ({} invocations a scenario, binaries from `{}`): numbers are not meaningful, no verdicts._\n", args.iterations, args.bin_dir.display());
    }
    let _ = writeln!(
        o,
        "Written by `cargo run --release -p cc-bench` (see README). Machine: {}. Binaries: `{}`.\n",
        machine(),
        args.bin_dir.display()
    );
    let _ = writeln!(o, "## Method\n");
    let _ = writeln!(o, "Each function's binary runs as Lambda runs it: a Runtime API emulator in the harness (`AWS_LAMBDA_RUNTIME_API` and the usual `AWS_LAMBDA_*` variables) hands it API Gateway HTTP API v2 events (or a schedule event) one at a time and reads its answers, each checked. **Init** is process spawn to its first `GET /2018-06-01/runtime/invocation/next`; **first** is the first invocation; **warm** p50/p99 are over {} further invocations. **Round trips** are HTTP requests counted at a proxy between the function and DynamoDB Local 3.3.1 (in memory), per warm invocation (first invocation in brackets). **Handler p50** is the median of the `latency_ms` each function logs for its own handling of a request (without the Runtime API exchange). **CPU** is the CPU time the function's process used (all threads, from `/proc/<pid>/task/*/schedstat`) over the warm invocations, divided by their number: less noisy than wall time for comparing builds. **Peak RSS** is the process's `VmHWM`. The **floor** is one raw consistent `BatchGetItem` of the same keys (same projection) from a warm SDK client in a process of its own, through the same proxy, woken by the harness over a pipe as the function is over the Runtime API, and sampled after each warm invocation of the scenario, so that both see the same machine state; warm latency is given as a ratio to it, since absolute times on a shared machine drift and ratios do not. The same read from a client inside the harness (measured after all scenarios) is reported too: it skips two cross-process wake-ups (see the notes below). DynamoDB Local is warmed up (a few hundred reads) before the first scenario. The vendors are the test fakes (`testkit`) on loopback.\n", args.iterations);
    let _ = writeln!(o, "## Results\n");
    let _ = writeln!(o, "| function | scenario | init ms | first ms | warm p50 ms | warm p99 ms | floor p50 ms | × floor | handler p50 ms (× floor) | CPU µs / invocation | round trips | peak RSS MiB |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let (floor, ratio, handler) = match (r.floor, r.handler) {
            (Some((f, _)), h) => (
                format!("{:.2}", ms(f)),
                format!("{:.2}", ratio(r.p50, f)),
                h.map_or("–".into(), |h| {
                    format!("{:.2} ({:.2})", ms(h), ratio(h, f))
                }),
            ),
            (None, h) => (
                "–".into(),
                "–".into(),
                h.map_or("–".into(), |h| format!("{:.2}", ms(h))),
            ),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {floor} | {ratio} | {handler} | {} | {:.2} ({}) | {:.1} |",
            r.function,
            r.name,
            ms(r.init),
            ms(r.first),
            ms(r.p50),
            ms(r.p99),
            r.cpu_us.map_or("–".into(), |c| format!("{c:.0}")),
            r.round_trips,
            r.first_round_trips,
            r.rss_kb as f64 / 1024.0
        );
    }
    let _ = writeln!(
        o,
        "\n| the floor two ways | keys | floor p50 / p99 ms, own process | floor p50 / p99 ms, in the harness | warm p50 × own-process floor | warm p50 × in-harness floor |\n|---|---|---|---|---|---|"
    );
    for r in results {
        let (Some(n), Some((f50, f99))) = (r.floor_keys, r.floor) else {
            continue;
        };
        let Some((h50, h99)) = floors.get(&n) else {
            continue;
        };
        let _ = writeln!(
            o,
            "| {} | {n} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} | {:.2} |",
            r.name,
            ms(f50),
            ms(f99),
            ms(*h50),
            ms(*h99),
            ratio(r.p50, f50),
            ratio(r.p50, *h50)
        );
    }

    let _ = writeln!(
        o,
        "\n| cold starts | n | init p50 ms | init p90 ms | init max ms |\n|---|---|---|---|---|"
    );
    for c in inits {
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            c.label,
            c.series.len(),
            ms(percentile(&c.series, 50)),
            ms(percentile(&c.series, 90)),
            ms(c.series.last().copied().unwrap_or_default())
        );
    }

    let _ = writeln!(o, "\n## Binary sizes (stripped)\n");
    let _ = writeln!(o, "| function | this run (`{}`) | arm64 opt-level 3 | arm64 \"s\" | arm64 \"z\" |\n|---|---|---|---|---|", args.bin_dir.display());
    // The largest arm64 opt-level 3 binary, or None when one is not built.
    let mut max_arm = Some(0f64);
    for f in FUNCTIONS {
        let mb = |p: PathBuf| file_size(&p).map(|b| b as f64 / 1_048_576.0);
        let arm = |profile: &str| {
            mb(PathBuf::from(format!(
                "target/lambda-sizes/{profile}/{f}/bootstrap"
            )))
        };
        let cell = |v: Option<f64>| v.map_or("not built".to_string(), |m| format!("{m:.2} MiB"));
        let release = arm("release");
        max_arm = match (max_arm, release) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        let _ = writeln!(
            o,
            "| {f} | {} | {} | {} | {} |",
            cell(mb(args.bin_dir.join(f))),
            cell(release),
            cell(arm("release-s")),
            cell(arm("release-z"))
        );
    }

    let _ = writeln!(o, "\n## Budget\n");
    let _ = writeln!(o, "| budget | measured | verdict |\n|---|---|---|");
    for c in inits {
        let p50 = ms(percentile(&c.series, 50));
        let _ = writeln!(
            o,
            "| init ≤ 20 ms, {} (median of {} cold starts) | {p50:.1} ms (max {:.1}) | {} |",
            c.label,
            c.series.len(),
            ms(c.series.last().copied().unwrap_or_default()),
            verdict(p50 <= 20.0, args.smoke)
        );
    }
    for r in results.iter().filter(|r| !r.name.contains("no priming")) {
        let Some((p50, _)) = r.floor else {
            continue;
        };
        let ratio = ratio(r.p50, p50);
        let _ = writeln!(
            o,
            "| warm {} ≤ 1.2 × floor | {ratio:.2} × | {} |",
            r.name,
            verdict(ratio <= 1.2, args.smoke)
        );
    }
    for r in results.iter().filter(|r| r.rt_budget.is_some()) {
        let budget = r.rt_budget.unwrap_or(0.0);
        let _ = writeln!(
            o,
            "| round trips, {} ≤ {budget} | {:.2} | {} |",
            r.name,
            r.round_trips,
            verdict(r.round_trips <= budget, args.smoke)
        );
    }
    let max_rss = results.iter().map(|r| r.rss_kb).max().unwrap_or(0) as f64 / 1024.0;
    let _ = writeln!(
        o,
        "| peak RSS ≤ 32 MB (MiB) | max {max_rss:.1} MiB | {} |",
        verdict(max_rss <= 32.0, args.smoke)
    );
    let _ = writeln!(
        o,
        "| stripped arm64 binary ≤ 8 MB (MiB, as AWS counts Lambda's limits; opt-level 3) | {} | {} |",
        max_arm.map_or("not built (`scripts/build-arm64`)".into(), |m| format!("max {m:.2} MiB")),
        match max_arm {
            Some(m) => verdict(m <= 8.0, args.smoke),
            None => "not measured",
        }
    );
    // Findings and decisions, kept by hand beside the harness and carried into every report.
    if let Ok(notes) = std::fs::read_to_string("bench/notes.md") {
        let _ = writeln!(o, "\n{notes}");
    }
    o
}
