//! Running a function as Lambda does and measuring it: spawn, init, first and warm
//! invocations, CPU, RSS, round trips, the handler's own latency from its logs, and the floor
//! read in the harness.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use testkit::runtime_api;

use crate::scenarios::Scenario;
use crate::{floor, Args};

/// Cold starts measured per function (and agent-sync role) for the init budget.
pub(crate) const COLD_STARTS: usize = 20;

pub(crate) fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn ratio(a: Duration, b: Duration) -> f64 {
    ms(a) / ms(b).max(1e-9)
}

#[derive(Default)]
pub(crate) struct Result1 {
    pub(crate) function: &'static str,
    pub(crate) name: String,
    pub(crate) init: Duration,
    pub(crate) first: Duration,
    pub(crate) p50: Duration,
    pub(crate) p99: Duration,
    /// The handler's own p50, from its log lines.
    pub(crate) handler: Option<Duration>,
    pub(crate) round_trips: f64,
    pub(crate) first_round_trips: u64,
    pub(crate) rss_kb: u64,
    /// The function's CPU time per warm invocation, µs (all its threads).
    pub(crate) cpu_us: Option<f64>,
    pub(crate) rt_budget: Option<f64>,
    /// Key count of the floor read, if the scenario has one.
    pub(crate) floor_keys: Option<usize>,
    /// The out-of-process floor sampled between this scenario's warm invocations (p50, p99).
    pub(crate) floor: Option<(Duration, Duration)>,
}

/// CPU time the process has used so far, all its threads (`/proc/<pid>/task/*/schedstat`, ns).
pub(crate) fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

pub(crate) fn peak_rss_kb(pid: u32) -> u64 {
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
pub(crate) fn log_path(s: &Scenario) -> PathBuf {
    let name: String = format!("{}-{}", s.function, s.name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    Path::new("target/bench-logs").join(format!("{name}.log"))
}

pub(crate) fn log_file(s: &Scenario) -> Result<Stdio, String> {
    let path = log_path(s);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Stdio::from(file))
}

/// The median of the `latency_ms` the function logged itself for its warm invocations: its own
/// handling time, without the Runtime API exchange.
pub(crate) fn handler_p50(s: &Scenario) -> Option<Duration> {
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
pub(crate) fn spawn_function(
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
pub(crate) async fn wait_init(
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
pub(crate) async fn cold_starts(
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

pub(crate) async fn run_scenario(
    args: &Args,
    base_env: &[(String, String)],
    proxy: &testkit::fault_proxy::FaultProxy,
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
        Some(f) => {
            Some(floor::FloorWorker::start(&proxy.url, table, f.attr, &f.pks, f.writes).await?)
        }
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
pub(crate) async fn harness_floor(
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
