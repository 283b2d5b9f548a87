//! Command-line interface of the `cc-callbacks` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use cc_shared::domain::clock::SystemClock;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::phone::PhoneNormalizer;

use crate::admin;
use crate::gateway::{self, Gateway};
use crate::numbers;
use crate::stores::Stores;

#[derive(Debug, Parser)]
#[command(
    name = "cc-callbacks",
    version,
    about = "Local gateway and admin commands of the cc-callbacks bundle"
)]
pub struct Cli {
    /// Where the embedded store lives (used when TABLE_NAME is not set).
    #[arg(long, global = true, default_value = ".data", env = "CC_DATA_DIR")]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve every callback locally (the default command).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        #[command(flatten)]
        limits: gateway::Limits,
    },
    /// Manage callback credentials.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
    /// Enrol and unlock identity-verification PINs.
    #[command(subcommand)]
    Pins(PinsCommand),
    /// Identity verification records.
    #[command(subcommand)]
    Records(RecordsCommand),
    /// The Huawei CEC agent directory.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Manage the DynamoDB table (TABLE_NAME; AWS_ENDPOINT_URL_DYNAMODB for DynamoDB Local).
    #[command(subcommand)]
    Table(TableCommand),
    /// The number mapping as a system of record: import, export, erasure, keys.
    #[command(subcommand)]
    Numbers(NumbersCommand),
}

#[derive(Debug, Subcommand)]
pub enum NumbersCommand {
    /// Loads the enterprise's own customer IDs from a `number,uid` CSV (a CRM's): checks the
    /// whole file, writes the good rows, reports each bad one by line; exit status 1 if any
    /// row was rejected. Re-running after an interruption completes the job.
    Import {
        file: PathBuf,
        /// Prepended to every ID of the file (for numeric CRM IDs), e.g. `crm-`.
        #[arg(long)]
        prefix: Option<String>,
    },
    /// Writes every mapping (number in E.164, uid, created_at) to a new file of mode 0600.
    Export {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "csv")]
        format: numbers::Format,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Erases customers: the mapping both ways, the PIN and its lockout, the verification
    /// records. Give numbers, or `--uid` IDs, or `--file` (a CSV with a number or uid column).
    Forget {
        numbers: Vec<String>,
        #[arg(long = "uid")]
        uids: Vec<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Adds a generated encryption key as the keyring's next version and makes it current
    /// (in its file, or as a new version of its Secrets Manager secret).
    AddKey,
    /// Re-encrypts every number sealed under an older key version with the current one.
    Rekey,
    /// Converts a store written by an earlier release (numbers in the clear) to this one's
    /// layout. Idempotent; can be interrupted and run again.
    Migrate,
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Generate a strong password and its `user:sha256:<hex>` entry.
    New {
        /// The BasicAuth user name the caller will send.
        #[arg(long)]
        user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PinsCommand {
    /// Enrol or replace PINs from a CSV file with the header `number,pin`.
    Import {
        /// The CSV file.
        file: PathBuf,
    },
    /// Lift a customer's lockout.
    Unlock {
        /// The customer's number, in any spelling.
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RecordsCommand {
    /// List verification records, newest first.
    List {
        /// Only this customer's records (any spelling of the number).
        #[arg(long)]
        number: Option<String>,
        /// Only this agent's (work number) records.
        #[arg(long)]
        agent: Option<String>,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-21T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// At most this many records.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Fetch the directory from the CEC now and update the store.
    Sync {
        /// Deactivate the agents missing from the answer however many they are (a sync is
        /// otherwise refused past AGENT_SYNC_MAX_DEACTIVATE_PERCENT of the active agents).
        #[arg(long)]
        allow_mass_deactivation: bool,
    },
    /// List the agents of the store.
    List {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Link a business-system account to an (active) agent.
    Link {
        /// The business-system account.
        account: String,
        /// The agent's work number.
        work_no: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TableCommand {
    /// Create the table with the key schema and TTL of template.yaml.
    Create,
}

pub type CliResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

pub async fn run(cli: Cli) -> CliResult {
    match cli.command.unwrap_or(Command::Serve {
        listen: "127.0.0.1:3000".parse()?,
        limits: gateway::Limits::from_env()?,
    }) {
        Command::Serve { listen, limits } => serve(&cli.data_dir, listen, limits).await,
        Command::Credentials(CredentialsCommand::New { user }) => {
            if user.is_empty() || user.contains([':', ',']) {
                return Err("the user name must be non-empty, without ':' or ','".into());
            }
            let (password, entry) = cc_shared::web::auth::generate_entry(&user)?;
            println!("password (give it to the caller, then forget it): {password}");
            println!("entry (append to the function's *_CREDENTIALS parameter): {entry}");
            Ok(())
        }
        Command::Pins(PinsCommand::Import { file }) => {
            let (stores, phones, pepper) = identity_context(&cli.data_dir).await?;
            let index = cc_shared::number_keys::index_key(&stores.res).await?;
            let report = admin::import_pins(
                &*stores.identity(),
                &phones,
                &pepper,
                &index,
                admin::open_csv(&file)?,
            )
            .await?;
            println!(
                "enrolled {} PINs, rejected {} rows ({})",
                report.enrolled,
                report.rejected.len(),
                stores.describe()
            );
            rejected_rows(
                report.rejected.iter().map(|(l, r)| (*l, r.as_str())),
                "enrolled",
            )
        }
        Command::Pins(PinsCommand::Unlock { number }) => {
            let stores = Stores::open(&cli.data_dir, None).await?;
            let phone = cc_shared::config::phone_normalizer()?
                .normalize(&number)
                .map_err(|e| format!("the number: {e}"))?;
            let index = cc_shared::number_keys::index_key(&stores.res).await?;
            if stores.identity().unlock(&index.index(&phone)).await? {
                println!("unlocked {}", phone.masked());
                Ok(())
            } else {
                Err(format!("{} has no enrolled PIN", phone.masked()).into())
            }
        }
        Command::Records(RecordsCommand::List {
            number,
            agent,
            since,
            limit,
            json,
        }) => {
            let (stores, phones, pepper) = identity_context(&cli.data_dir).await?;
            let query = admin::record_query(
                &phones,
                &pepper,
                number.as_deref(),
                agent,
                since.as_deref(),
                usize::from(limit),
            )?;
            let records = stores.identity().list_records(&query).await?;
            admin::print_records(&mut std::io::stdout().lock(), &records, json)?;
            Ok(())
        }
        Command::Agents(AgentsCommand::Sync {
            allow_mass_deactivation,
        }) => {
            let stores = Stores::open(&cli.data_dir, None).await?;
            let cec = stores
                .cec()
                .await?
                .ok_or("CEC_BASE_URL is not set: configure the CEC (see README)")?;
            let guard = if allow_mass_deactivation {
                agent_sync::DeactivationGuard::OFF
            } else {
                agent_sync::deactivation_guard()?
            };
            let c = agent_sync::sync(&*stores.agents(), &cec, &SystemClock, guard).await?;
            println!(
                "added {}, updated {}, deactivated {}, unchanged {} ({})",
                c.added,
                c.updated,
                c.deactivated,
                c.unchanged,
                stores.describe()
            );
            Ok(())
        }
        Command::Agents(AgentsCommand::List { json }) => {
            let stores = Stores::open(&cli.data_dir, None).await?;
            let agents = stores.agents().list_agents().await?;
            let last = stores.agents().last_sync().await?;
            admin::print_agents(&mut std::io::stdout().lock(), &agents, last.as_ref(), json)?;
            Ok(())
        }
        Command::Agents(AgentsCommand::Link { account, work_no }) => {
            let stores = Stores::open(&cli.data_dir, None).await?;
            let account = account.trim();
            if !cc_shared::domain::agents::valid_account(account) {
                return Err(
                    "the account must be 1 to 128 characters, without control characters".into(),
                );
            }
            match stores.agents().get_agent(&work_no).await? {
                Some(a) if a.active => {}
                Some(_) => return Err(format!("agent {work_no} is inactive").into()),
                None => {
                    return Err(format!(
                        "agent {work_no} is not in the directory (run `cc-callbacks agents sync`)"
                    )
                    .into())
                }
            }
            stores.agents().link_account(account, &work_no).await?;
            println!("linked {account} to agent {work_no}");
            Ok(())
        }
        Command::Numbers(command) => run_numbers(&cli.data_dir, command).await,
        Command::Table(TableCommand::Create) => {
            let stores = Stores::open(&cli.data_dir, None).await?;
            let dynamo = stores
                .dynamo()
                .ok_or("TABLE_NAME is not set: the embedded store needs no table")?;
            dynamo.create_table().await?;
            println!("created table {}", dynamo.table());
            Ok(())
        }
    }
}

/// Prints each rejected row of an import by its line; then an error (exit status 1) if there
/// was any, saying what became of the others.
fn rejected_rows<'a>(
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

/// Lists the IDs whose number did not open (never a number); then an error (exit status 1) if
/// there was any, saying what became of them and of the others.
fn unopened_ids(ids: &[cc_shared::domain::uid::Uid], what: &str) -> CliResult {
    if ids.is_empty() {
        return Ok(());
    }
    for id in ids {
        println!("  could not be opened: {}", id.as_str());
    }
    Err(format!(
        "{} mappings could not be opened (a damaged or tampered item, or a key version missing \
         from the keyring) and were {what}; every other mapping was done. Restore the keyring if \
         a version is missing; `cc-callbacks numbers forget --uid ID` erases a damaged item",
        ids.len()
    )
    .into())
}

/// The store, number normaliser and pepper the identity commands work with.
async fn identity_context(
    data_dir: &std::path::Path,
) -> Result<(Stores, PhoneNormalizer, Pepper), Box<dyn std::error::Error + Send + Sync>> {
    let stores = Stores::open(data_dir, None).await?;
    let pepper = stores.pepper().await?;
    Ok((stores, cc_shared::config::phone_normalizer()?, pepper))
}

async fn serve(
    data_dir: &std::path::Path,
    listen: SocketAddr,
    limits: gateway::Limits,
) -> CliResult {
    cc_shared::logging::init();
    let stores = Stores::open(data_dir, Gateway::dev_credentials(&listen)?).await?;
    let gateway = Arc::new(Gateway::new(&stores.res).await?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "cc-callbacks listening on http://{addr} ({})",
        stores.describe()
    );
    for route in gateway::ROUTES {
        eprintln!("  POST http://{addr}{route}");
    }
    if !gateway.agent_directory_enabled() {
        eprintln!("  agent directory is off: CEC_BASE_URL is not set (see README)");
    }
    if !gateway.token_exchange_enabled() {
        eprintln!("  token exchange is off: FUYUN_CLIENT_ID is not set (see README)");
    }
    if gateway.dev_credentials {
        eprintln!(
            "  no credentials configured: accepting the development credentials dev:dev (loopback only)"
        );
    }
    eprintln!(
        "try:\n  curl -s -u dev:dev -H 'content-type: application/json' \\\n    -d '{{\"Numbers\":[\"13988888888\"],\"Mode\":\"PhoneToUID\"}}' http://{addr}/number-mapping"
    );
    gateway::serve(listener, gateway, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

async fn run_numbers(data_dir: &std::path::Path, command: NumbersCommand) -> CliResult {
    match command {
        NumbersCommand::Migrate => migrate(data_dir).await,
        NumbersCommand::AddKey => {
            let stores = Stores::open(data_dir, None).await?;
            let version = cc_shared::number_keys::add_key_version(&stores.res).await?;
            println!(
                "key version {version} added and made current: running functions and gateways \
                 seal new numbers with it within NUMBER_KEYRING_REFRESH_SECONDS (5 minutes by \
                 default); then run `cc-callbacks numbers rekey`"
            );
            Ok(())
        }
        NumbersCommand::Import { file, prefix } => {
            let (stores, keys) = open_with_keys(data_dir).await?;
            let phones = cc_shared::config::phone_normalizer()?;
            let r =
                numbers::import(stores.admin(), &keys, &phones, &file, prefix.as_deref()).await?;
            println!(
                "{} rows: {} written, {} already there, {} rejected ({})",
                r.rows,
                r.written,
                r.unchanged,
                r.rejected.len(),
                stores.describe()
            );
            rejected_rows(r.rejected.iter().map(|(l, r)| (*l, r.as_str())), "imported")
        }
        NumbersCommand::Export { out, format, force } => {
            let (stores, keys) = open_with_keys(data_dir).await?;
            let r = numbers::export(stores.admin(), &keys, &out, format, force).await?;
            println!("exported {} mappings to {}", r.exported, out.display());
            unopened_ids(&r.unopened, "left out of the export")
        }
        NumbersCommand::Forget {
            numbers: given,
            uids,
            file,
        } => {
            let (stores, keys) = open_with_keys(data_dir).await?;
            let mut targets: Vec<numbers::Target> =
                given.into_iter().map(numbers::Target::Number).collect();
            targets.extend(uids.into_iter().map(numbers::Target::Uid));
            if let Some(file) = file {
                targets.extend(numbers::targets_from_file(&file)?);
            }
            if targets.is_empty() {
                return Err("give numbers, --uid IDs or --file".into());
            }
            let phones = cc_shared::config::phone_normalizer()?;
            let pepper = stores.pepper().await?;
            let r = numbers::forget(stores.admin(), &keys, &pepper, &phones, &targets).await?;
            println!(
                "forgot {} customers: {} mappings, {} PINs, {} verification records; \
                 {} unknown (nothing was stored) ({})",
                r.customers,
                r.mappings,
                r.pins,
                r.records,
                r.unknown,
                stores.describe()
            );
            if r.records_unreached.is_empty() {
                return Ok(());
            }
            for id in &r.records_unreached {
                println!("  verification records not reached: {}", id.as_str());
            }
            Err(format!(
                "{} IDs' numbers could not be opened: their mapping and PIN are erased, but \
                 their verification records are found by the number: run `cc-callbacks numbers \
                 forget NUMBER` for them",
                r.records_unreached.len()
            )
            .into())
        }
        NumbersCommand::Rekey => {
            let (stores, keys) = open_with_keys(data_dir).await?;
            let r = numbers::rekey(stores.admin(), &keys).await?;
            println!(
                "{} mappings scanned: {} re-encrypted, {} changed meanwhile and left \
                 as they are ({})",
                r.scanned,
                r.resealed,
                r.raced,
                stores.describe()
            );
            if !r.unopened.is_empty() {
                return unopened_ids(&r.unopened, "left as they are");
            }
            if r.resealed == 0 && r.raced == 0 {
                println!(
                    "every number is sealed under the current version: older versions may be \
                     removed once a run started NUMBER_KEYRING_REFRESH_SECONDS (5 minutes) or \
                     more after `numbers add-key` says so (until then a function may still \
                     seal with the previous version)"
                );
            } else {
                println!("run it again until it re-encrypts none");
            }
            Ok(())
        }
    }
}

/// The store of `data_dir` (or `TABLE_NAME`) and the number keys, as number mapping reads them.
async fn open_with_keys(
    data_dir: &std::path::Path,
) -> Result<(Stores, cc_shared::domain::protect::NumberProtection), numbers::Failure> {
    let stores = Stores::open(data_dir, None).await?;
    let keys = stores.keys().await?;
    Ok((stores, keys))
}

/// `numbers migrate`: the embedded store is converted without being opened (this release
/// refuses to open its old layout); DynamoDB item by item.
async fn migrate(data_dir: &std::path::Path) -> CliResult {
    use cc_shared::config::StoreLocation;
    let location = StoreLocation::from_env(data_dir)?;
    let report = match &location {
        StoreLocation::Embedded { data_dir } => {
            let sdk = crate::stores::sdk_for(&location).await?;
            let file = cc_shared::store::embedded::EmbeddedFile(data_dir.clone());
            let place = cc_shared::number_keys::KeyPlace {
                data_dir: Some(data_dir),
                sdk: sdk.as_ref(),
                keyed: Some(&file),
            };
            let keys = cc_shared::number_keys::protection(place).await?;
            let dir = data_dir.clone();
            tokio::task::spawn_blocking(move || cc_shared::store::embedded::migrate(&dir, &keys))
                .await??
        }
        StoreLocation::DynamoDb { .. } => {
            let (stores, keys) = open_with_keys(data_dir).await?;
            let dynamo = stores.dynamo().ok_or("not a DynamoDB store")?;
            let bar = numbers::progress(None, "converting items");
            let report = dynamo.migrate_legacy(&keys, &|| bar.inc(1)).await?;
            bar.finish_and_clear();
            report
        }
    };
    println!(
        "converted {} mappings and {} PINs; {} old mappings superseded by newer ones ({})",
        report.mappings,
        report.pins,
        report.superseded,
        crate::stores::describe(&location)
    );
    Ok(())
}
