use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cc_callbacks::cli::Cli::parse();
    match cc_callbacks::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
