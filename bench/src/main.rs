//! cc-bench: runs each function's binary exactly as Lambda runs it (a Runtime API emulator,
//! the usual `AWS_LAMBDA_*` variables), against DynamoDB Local behind a counting proxy and the
//! vendor fakes, and writes BENCHMARKS.md: init, first-invoke and warm latency, DynamoDB round
//! trips per invocation, peak RSS and binary sizes, with warm latency also as a ratio to a raw
//! BatchGetItem floor measured in the same run (see `floor`).
//!
//! `cargo run --release -p cc-bench` (full run, ~1,000 invocations a scenario), or
//! `cargo run -p cc-bench -- --smoke --bin-dir target/debug --no-build --out target/bench-smoke.md`
//! (what the test command runs so the harness cannot rot: few invocations, no budget verdicts).
//!
//! Modules: `setup` (build, DynamoDB Local), `seeding` (the data), `scenarios`, `measure`
//! (spawn, invoke, time), `floor` (the raw read to compare with), testkit's proxy (round trips),
//! `report` (BENCHMARKS.md); the Runtime API emulator is `testkit::runtime_api`.

mod floor;
mod measure;
mod report;
mod scenarios;
mod seeding;
mod setup;

use std::path::PathBuf;

use clap::Parser;

use measure::{cold_starts, harness_floor, run_scenario, COLD_STARTS};
use report::{report, ColdStarts};
use scenarios::Scenario;

#[derive(Debug, Parser)]
#[command(
    name = "cc-bench",
    about = "Benchmarks every function as Lambda runs it; writes BENCHMARKS.md"
)]
pub(crate) struct Args {
    /// Warm invocations per scenario.
    #[arg(long, default_value_t = 1000, value_parser = positive)]
    pub(crate) iterations: usize,
    /// A short run that keeps the harness from rotting: 20 invocations, no verdicts.
    #[arg(long)]
    pub(crate) smoke: bool,
    /// Where the function binaries are.
    #[arg(long, default_value = "target/release")]
    pub(crate) bin_dir: PathBuf,
    /// The report to write.
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub(crate) out: PathBuf,
    /// Use the binaries as they are instead of building them (release) first.
    #[arg(long)]
    pub(crate) no_build: bool,
    /// Only the scenarios of functions whose name contains this.
    #[arg(long)]
    pub(crate) only: Option<String>,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("a positive number".into()),
    }
}

fn main() -> std::process::ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let result = if argv.get(1).map(String::as_str) == Some(floor::WORKER_FLAG) {
        floor::worker_main(&argv[2..])
    } else {
        let mut args = Args::parse();
        if args.smoke {
            args.iterations = 20;
        }
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(run(args)))
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cc-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if !args.no_build {
        setup::build(&args)?;
    }
    let (endpoint, started) = setup::start_dynamodb()?;
    let result = bench(&args, &endpoint).await;
    if started {
        let _ = std::process::Command::new("scripts/dynamodb-local")
            .arg("stop")
            .status();
    }
    result
}

async fn bench(args: &Args, endpoint: &str) -> Result<(), String> {
    let seed = seeding::seed(endpoint).await?;
    let (base_env, scenarios) = scenarios::all(&seed);
    let seeding::Seed {
        proxy,
        client,
        table,
        phone_pks,
        cec,
        idp,
        ..
    } = &seed;
    // Warm DynamoDB Local's JVM up first, so that the first scenarios do not pay its JIT.
    for n in [1usize, 10, 100] {
        harness_floor(client, table, &phone_pks[..n], args.iterations.min(300)).await?;
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
        let r = run_scenario(args, &base_env, proxy, table, s)
            .await
            .map_err(|e| format!("{} / {}: {e}", s.function, s.name))?;
        results.push(r);
    }
    let mut floors = std::collections::BTreeMap::new();
    for n in [1usize, 10, 100] {
        floors.insert(
            n,
            harness_floor(client, table, &phone_pks[..n], args.iterations).await?,
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
