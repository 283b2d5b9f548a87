//! JSON logs, one object per line. Nothing logged may contain a full phone number, an
//! ID-to-number pair, a PIN, a password, a key or a token: log counts, outcomes and masked
//! numbers (`phone::mask`) only.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// `cc_shared` and the process's own crates (`crates`: a Lambda binary names itself with
/// `module_path!()`, the local process lists every function of `functions::FUNCTIONS`) log at
/// `LOG_LEVEL` (or, without it, Lambda's `AWS_LAMBDA_LOG_LEVEL`; default info), dependencies
/// (SDK, HTTP) at warn. Nothing to keep in step by hand: a new function's lines pass because
/// its binary names its crate. The template sets `LOG_LEVEL` and lets Lambda pass every line
/// (`ApplicationLogLevel: TRACE`): Lambda would count the metrics' EMF lines, which have no
/// `level`, as INFO and drop them under a WARN filter.
pub fn filter<S: AsRef<str>>(crates: &[S]) -> Targets {
    let level = crate::config::optional("LOG_LEVEL")
        .or_else(|| crate::config::optional("AWS_LAMBDA_LOG_LEVEL"))
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("cc_shared", level)
        .with_targets(crates.iter().map(|t| (t.as_ref().to_string(), level)))
}

/// The JSON formatting layer, writing to `writer` (stdout in production, a buffer in tests).
pub fn json_layer<S, W>(writer: W) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        // The request's span: `{"span": {"request_id", "api_request_id", "trace_id"}}`.
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(writer)
}

/// Installs the JSON logger on stdout for the whole process, `crates` as in [`filter`].
pub fn init<S: AsRef<str>>(crates: &[S]) {
    let _ = tracing_subscriber::registry()
        .with(json_layer(std::io::stdout).with_filter(filter(crates)))
        .try_init();
}

/// A warning for the operator: a log line where a logger is installed (the gateway, Lambda),
/// else a line on stderr (the admin commands install none).
pub fn warn_operator(message: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{message}");
    } else {
        eprintln!("warning: {message}");
    }
}
