//! `cc-callbacks credentials ...`: a caller's password and the entry to configure.

use clap::Subcommand;

use super::CliResult;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a strong password and its `user:sha256:<hex>` entry.
    New {
        /// The BasicAuth user name the caller will send.
        #[arg(long)]
        user: String,
    },
}

pub fn run(command: Command) -> CliResult {
    match command {
        Command::New { user } => {
            if user.is_empty() || user.contains([':', ',']) {
                return Err("the user name must be non-empty, without ':' or ','".into());
            }
            let (password, entry) = cc_shared::web::auth::generate_entry(&user)?;
            println!("password (give it to the caller, then forget it): {password}");
            println!("entry (append to the function's *_CREDENTIALS parameter): {entry}");
            Ok(())
        }
    }
}
