//! BENCHMARKS.md: the tables of a run, the budget and its verdicts, and the notes kept by hand
//! in bench/notes.md.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::measure::{ms, percentile, ratio, Result1};
use crate::scenarios::functions;
use crate::Args;

pub(crate) fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

pub(crate) fn machine() -> String {
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

pub(crate) fn verdict(ok: bool, smoke: bool) -> &'static str {
    match (smoke, ok) {
        (true, _) => "(smoke)",
        (false, true) => "pass",
        (false, false) => "**FAIL**",
    }
}

/// Init durations of one function's (or agent-sync role's) cold starts, sorted.
pub(crate) struct ColdStarts {
    pub(crate) label: String,
    pub(crate) series: Vec<Duration>,
}

pub(crate) fn report(
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
    let _ = writeln!(o, "Each function's binary runs as Lambda runs it: a Runtime API emulator in the harness (`AWS_LAMBDA_RUNTIME_API` and the usual `AWS_LAMBDA_*` variables) hands it API Gateway HTTP API v2 events (or a schedule event) one at a time and reads its answers, each checked. **Init** is process spawn to its first `GET /2018-06-01/runtime/invocation/next`; **first** is the first invocation; **warm** p50/p99 are over {} further invocations. **Round trips** are HTTP requests counted at a proxy between the function and DynamoDB Local 3.3.1 (in memory), per warm invocation (first invocation in brackets). **Handler p50** is the median of the `latency_ms` each function logs for its own handling of a request (without the Runtime API exchange). **CPU** is the CPU time the function's process used (all threads, from `/proc/<pid>/task/*/schedstat`) over the warm invocations, divided by their number: less noisy than wall time for comparing builds. **Peak RSS** is the process's `VmHWM`. The **floor** is one raw consistent `BatchGetItem` of the same keys (same projection; for UIDToPhone, at the same time, a raw `BatchWriteItem` of as many records as the function writes: the least DynamoDB work the request needs) from a warm SDK client in a process of its own, through the same proxy, woken by the harness over a pipe as the function is over the Runtime API, and sampled after each warm invocation of the scenario, so that both see the same machine state; warm latency is given as a ratio to it, since absolute times on a shared machine drift and ratios do not. The same read (read only) from a client inside the harness (measured after all scenarios) is reported too: it skips two cross-process wake-ups (see the notes below). DynamoDB Local is warmed up (a few hundred reads) before the first scenario. The vendors are the test fakes (`testkit`) on loopback.\n", args.iterations);
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
    for f in functions() {
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
