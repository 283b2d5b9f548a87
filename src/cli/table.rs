//! `cc-callbacks table ...`: the DynamoDB table of a stage, for DynamoDB Local and tests.

use std::path::Path;

use clap::Subcommand;

use super::CliResult;
use crate::stores::Stores;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the table with the key schema and TTL of template.yaml.
    Create,
}

pub async fn run(data_dir: &Path, command: Command) -> CliResult {
    match command {
        Command::Create => {
            let stores = Stores::open(data_dir, None).await?;
            let dynamo = stores
                .dynamo()
                .ok_or("TABLE_NAME is not set: the embedded store needs no table")?;
            dynamo.create_table().await?;
            println!("created table {}", dynamo.table());
            Ok(())
        }
    }
}
