//! cc-bench: runs each function's binary exactly as Lambda runs it (a Runtime API emulator,
//! the usual `AWS_LAMBDA_*` variables), against DynamoDB Local behind a counting proxy and the
//! vendor fakes, and writes BENCHMARKS.md: init, first-invoke and warm latency, DynamoDB round
//! trips per invocation, peak RSS and binary sizes, with warm latency also as a ratio to a raw
//! BatchGetItem floor measured in the same run.
//!
//! `cargo run --release -p cc-bench` (full run, ~1,000 invocations a scenario), or
//! `cargo run -p cc-bench -- --smoke --bin-dir target/debug --no-build --out target/bench-smoke.md`
//! (what the test command runs so the harness cannot rot: few invocations, no budget verdicts).
//! `--only <function>` runs one function's scenarios, `--iterations N` sets the warm count.

mod proxy;
mod runtime_api;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use bytes::Bytes;
use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::{AgentStore, IdentityStore, MappingStore};

const FUNCTIONS: &[&str] = &[
    "number-mapping",
    "identity-verification",
    "token-exchange",
    "agent-sync",
];
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
    /// The raw BatchGetItem floor to compare warm latency with, by key count.
    floor_keys: Option<usize>,
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
    rt_budget: Option<f64>,
    floor_keys: Option<usize>,
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

async fn run_scenario(
    args: &Args,
    base_env: &[(String, String)],
    proxy: &proxy::CountingProxy,
    s: &Scenario,
) -> Result<Result1, String> {
    let api = runtime_api::RuntimeApi::start().await;
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
        .stdout(log_file(s)?)
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let spawned = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot start {}: {e}",
            args.bin_dir.join(s.function).display()
        )
    })?;
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
    let init = api
        .first_next()
        .map(|t| t - spawned)
        .ok_or("the function never asked for an invocation")?;
    let before = proxy.count();
    let (sent, first) = api.invoke((s.event)(0)).await?;
    let first_round_trips = proxy.count() - before;
    check(0, &first)?;

    let mut warm = Vec::with_capacity(args.iterations);
    let before = proxy.count();
    for i in 1..=args.iterations {
        let (sent, outcome) = api.invoke((s.event)(i)).await?;
        check(i, &outcome)?;
        warm.push(outcome.at - sent);
    }
    let round_trips = (proxy.count() - before) as f64 / args.iterations as f64;
    let rss_kb = peak_rss_kb(pid);
    let _ = child.kill().await;
    let _ = child.wait().await;
    let handler = handler_p50(s);
    warm.sort();
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
        rt_budget: s.rt_budget,
        floor_keys: s.floor_keys,
    })
}

/// The floor: one raw BatchGetItem of `keys` known numbers from a warm client, through the same
/// proxy. Returns (p50, p99).
async fn floor(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pks: &[String],
    iterations: usize,
) -> Result<(Duration, Duration), String> {
    let keys: Vec<_> = pks
        .iter()
        .map(|pk| {
            std::collections::HashMap::from([
                ("pk".to_string(), AttributeValue::S(pk.clone())),
                ("sk".to_string(), AttributeValue::S("MAP".into())),
            ])
        })
        .collect();
    let request = KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .projection_expression("#pk, #v")
        .expression_attribute_names("#pk", "pk")
        .expression_attribute_names("#v", "uid")
        .build()
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(iterations);
    for i in 0..=iterations {
        let t = Instant::now();
        let out = client
            .batch_get_item()
            .request_items(table, request.clone())
            .send()
            .await
            .map_err(|e| format!("floor BatchGetItem: {e:?}"))?;
        if i > 0 {
            times.push(t.elapsed());
        }
        let found = out
            .responses
            .and_then(|mut r| r.remove(table))
            .map_or(0, |v| v.len());
        if found != pks.len() {
            return Err(format!("floor read {found} of {} items", pks.len()));
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
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
        cc_shared::uid::Uid::generate().map_err(|e| e.to_string())?
    );
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(cc_shared::secrets::sdk_http_client())
        .endpoint_url(&proxy.url)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let store = DynamoStore::new(client.clone(), table.clone());
    store.create_table().await.map_err(|e| e.to_string())?;

    // Seed: 100 known numbers, a PIN, the agent directory and a link.
    let phones = cc_shared::phone::PhoneNormalizer::new("CN", &[]).map_err(|e| e.to_string())?;
    let numbers: Vec<String> = (0..100).map(|i| format!("1390000{i:04}")).collect();
    let keys: Vec<_> = numbers
        .iter()
        .map(|n| phones.normalize(n).unwrap())
        .collect();
    let uids = store.create_uids(&keys).await.map_err(|e| e.to_string())?;
    let uid_list: Vec<String> = keys.iter().map(|k| uids[k].to_string()).collect();
    let pepper = cc_shared::identity::Pepper::new(PEPPER.as_bytes().to_vec())?;
    store
        .put_pins(&[(keys[0].clone(), pepper.pin_digest(&keys[0], "2468"))])
        .await
        .map_err(|e| e.to_string())?;
    let cec = testkit::fake_cec::FakeCec::start().await;
    let cec_client = agent_sync::cec::CecClient::new(agent_sync::cec::CecSettings {
        base_url: cec.base_url.clone(),
        agent_info_path: testkit::fake_cec::AGENTS_PATH.into(),
        app_key: testkit::fake_cec::APP_KEY.into(),
        app_secret: testkit::fake_cec::APP_SECRET.into(),
        token_expire_seconds: 3600,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
    })
    .map_err(|e| e.to_string())?;
    agent_sync::sync(&store, &cec_client, &cc_shared::clock::SystemClock)
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
            floor_keys: Some(n),
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
        floor_keys: None,
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
            floor_keys: Some(10),
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
            floor_keys: None,
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
            floor_keys: None,
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
        floor_keys: None,
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
        floor_keys: None,
    });

    // Warm DynamoDB Local's JVM up first, so that the first scenarios do not pay its JIT.
    for n in [1usize, 10, 100] {
        let pks: Vec<String> = keys[..n]
            .iter()
            .map(|k| format!("PHONE#{}", k.as_str()))
            .collect();
        floor(&client, &table, &pks, args.iterations.min(300)).await?;
    }

    let mut results = Vec::new();
    let selected = scenarios.iter().filter(|s| {
        args.only
            .as_deref()
            .is_none_or(|only| s.function.contains(only))
    });
    for s in selected {
        eprintln!("cc-bench: {} / {}", s.function, s.name);
        let r = run_scenario(args, &base_env, &proxy, s)
            .await
            .map_err(|e| format!("{} / {}: {e}", s.function, s.name))?;
        results.push(r);
    }
    let mut floors = std::collections::BTreeMap::new();
    for n in [1usize, 10, 100] {
        let pks: Vec<String> = keys[..n]
            .iter()
            .map(|k| format!("PHONE#{}", k.as_str()))
            .collect();
        floors.insert(n, floor(&client, &table, &pks, args.iterations).await?);
    }
    idp.assert_no_violations();
    cec.assert_no_violations();

    let report = report(args, &results, &floors);
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

fn report(
    args: &Args,
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
    let _ = writeln!(o, "Each function's binary runs as Lambda runs it: a Runtime API emulator in the harness (`AWS_LAMBDA_RUNTIME_API` and the usual `AWS_LAMBDA_*` variables) hands it API Gateway HTTP API v2 events (or a schedule event) one at a time and reads its answers, each checked. **Init** is process spawn to its first `GET /2018-06-01/runtime/invocation/next`; **first** is the first invocation; **warm** p50/p99 are over {} further invocations. **Round trips** are HTTP requests counted at a proxy between the function and DynamoDB Local 3.3.1 (in memory), per warm invocation (first invocation in brackets). **Handler p50** is the median of the `latency_ms` each function logs for its own handling of a request (without the Runtime API exchange). **Peak RSS** is the process's `VmHWM`. The **floor** is one raw consistent `BatchGetItem` of the same keys from a warm SDK client in the harness, through the same proxy, in the same run; warm latency is also given as a ratio to it, since absolute times on a shared machine drift and ratios do not. DynamoDB Local is warmed up (a few hundred reads) before the first scenario. The vendors are the test fakes (`testkit`) on loopback.\n", args.iterations);
    let _ = writeln!(o, "## Results\n");
    let _ = writeln!(o, "| function | scenario | init ms | first ms | warm p50 ms | warm p99 ms | × floor p50 | handler p50 ms (× floor) | round trips | peak RSS MB |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let ratio = r
            .floor_keys
            .and_then(|n| floors.get(&n))
            .map(|(p50, _)| format!("{:.2}", ms(r.p50) / ms(*p50).max(1e-9)))
            .unwrap_or_else(|| "–".into());
        let handler = match (r.handler, r.floor_keys.and_then(|n| floors.get(&n))) {
            (Some(h), Some((p50, _))) => {
                format!("{:.2} ({:.2})", ms(h), ms(h) / ms(*p50).max(1e-9))
            }
            (Some(h), None) => format!("{:.2}", ms(h)),
            (None, _) => "–".into(),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} | {:.2} ({}) | {:.1} |",
            r.function,
            r.name,
            ms(r.init),
            ms(r.first),
            ms(r.p50),
            ms(r.p99),
            ratio,
            handler,
            r.round_trips,
            r.first_round_trips,
            r.rss_kb as f64 / 1024.0
        );
    }
    let _ = writeln!(
        o,
        "\n| floor: raw BatchGetItem | p50 ms | p99 ms |\n|---|---|---|"
    );
    for (n, (p50, p99)) in floors {
        let _ = writeln!(o, "| {n} keys | {:.2} | {:.2} |", ms(*p50), ms(*p99));
    }

    let _ = writeln!(o, "\n## Binary sizes (stripped)\n");
    let _ = writeln!(o, "| function | this run (`{}`) | arm64 opt-level 3 | arm64 \"s\" | arm64 \"z\" |\n|---|---|---|---|---|", args.bin_dir.display());
    let mut sizes_ok = true;
    for f in FUNCTIONS {
        let mb = |p: PathBuf| file_size(&p).map(|b| b as f64 / 1_048_576.0);
        let arm = |profile: &str| {
            mb(PathBuf::from(format!(
                "target/lambda-sizes/{profile}/{f}/bootstrap"
            )))
        };
        let cell = |v: Option<f64>| v.map_or("not built".to_string(), |m| format!("{m:.2} MB"));
        let release = arm("release");
        if release.is_some_and(|m| m > 8.0) {
            sizes_ok = false;
        }
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
    let max_init = results.iter().map(|r| r.init).max().unwrap_or_default();
    let _ = writeln!(
        o,
        "| init ≤ 20 ms, every function | max {:.1} ms | {} |",
        ms(max_init),
        verdict(ms(max_init) <= 20.0, args.smoke)
    );
    for r in results
        .iter()
        .filter(|r| r.floor_keys.is_some() && !r.name.contains("no priming"))
    {
        let (p50, _) = floors[&r.floor_keys.unwrap_or(1)];
        let ratio = ms(r.p50) / ms(p50).max(1e-9);
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
        "| peak RSS ≤ 32 MB | max {max_rss:.1} MB | {} |",
        verdict(max_rss <= 32.0, args.smoke)
    );
    let _ = writeln!(
        o,
        "| stripped arm64 binary ≤ 8 MB (opt-level 3) | see sizes | {} |",
        verdict(sizes_ok, args.smoke)
    );
    // Findings and decisions, kept by hand beside the harness and carried into every report.
    if let Ok(notes) = std::fs::read_to_string("bench/notes.md") {
        let _ = writeln!(o, "\n{notes}");
    }
    o
}
