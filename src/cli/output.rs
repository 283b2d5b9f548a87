//! What the commands print, in one style: times as RFC 3339, progress bars on a terminal,
//! rejected rows by line. Nothing printed is ever a number, a PIN or a key.

use indicatif::{ProgressBar, ProgressStyle};

use super::CliResult;

/// A progress bar on stderr, drawn only when stderr is a terminal (indicatif's default);
/// `len` None for a spinner with a count.
pub fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg} {pos} ({per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_message(what.to_string());
    bar
}

pub fn rfc3339(epoch: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| epoch.to_string())
}

pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| format!("--since must be an RFC 3339 time such as 2026-11-21T08:00:00Z: {e}"))
}

/// Prints each rejected row of an import by its line; then an error (exit status 1) if there
/// was any, saying what became of the others.
pub fn rejected_rows<'a>(
    rejected: impl IntoIterator<Item = (u64, &'a str)>,
    others: &str,
) -> CliResult {
    let mut any = false;
    for (line, reason) in rejected {
        any = true;
        println!("  line {line}: {reason}");
    }
    if any {
        Err(format!("some rows were rejected (the others were {others})").into())
    } else {
        Ok(())
    }
}
