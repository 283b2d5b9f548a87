//! `cc-callbacks functions`: the one list of the functions (`crate::functions`), for people and
//! for scripts (`--names`: `scripts/build-arm64`).

use super::CliResult;
use crate::functions::FUNCTIONS;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the names, one a line (for scripts).
    #[arg(long)]
    names: bool,
}

pub fn run(args: Args) -> CliResult {
    for f in FUNCTIONS {
        if args.names {
            println!("{}", f.name);
            continue;
        }
        let served = match &f.vendor {
            Some(v) if !(v.configured)() => format!("off here: {}", v.missing),
            _ => "served here".to_string(),
        };
        println!(
            "{:<22}  POST {:<18}  {:<28}  {served}",
            f.name, f.route, f.credentials_var
        );
    }
    Ok(())
}
