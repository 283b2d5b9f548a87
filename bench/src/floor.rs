//! The floor in its own process: a warm SDK client in a child process that makes one raw
//! BatchGetItem each time the harness asks (a line on its stdin) and answers with a line; for a
//! scenario that also writes (UIDToPhone's unmasking records), a raw BatchWriteItem of as many
//! items of the same size and a raw conditional UpdateItem of a counter (the caller's budget)
//! at the same time, as the function does.
//!
//! A function answers from its own process, woken by the harness, and its DynamoDB calls wake
//! the proxy and DynamoDB Local in turn; a client inside the harness skips two of those
//! cross-process wake-ups (its proxy shares its threads). This floor pays the same wake-ups
//! as the function, so the ratio of the two is what the function's own code adds. It is
//! sampled interleaved with the function's invocations, so both see the same machine state.

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

pub const WORKER_FLAG: &str = "--floor-worker";

/// A DynamoDB client as the harness builds it (static credentials, no config files).
pub fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(cc_shared::aws::sdk_http_client())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "bench",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The same request as number mapping's store makes: consistent, projecting `pk` and `attr`.
pub fn request(pks: &[String], attr: &str) -> Result<KeysAndAttributes, String> {
    let keys: Vec<_> = pks
        .iter()
        .map(|pk| {
            std::collections::HashMap::from([
                ("pk".to_string(), AttributeValue::S(pk.clone())),
                ("sk".to_string(), AttributeValue::S("MAP".into())),
            ])
        })
        .collect();
    KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .consistent_read(true)
        .projection_expression("#pk, #v")
        .expression_attribute_names("#pk", "pk")
        .expression_attribute_names("#v", attr)
        .build()
        .map_err(|e| e.to_string())
}

/// One raw BatchGetItem; fails unless every key was found.
pub async fn read_once(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    request: &KeysAndAttributes,
    expected: usize,
) -> Result<(), String> {
    let out = client
        .batch_get_item()
        .request_items(table, request.clone())
        .send()
        .await
        .map_err(|e| format!("floor BatchGetItem: {e:?}"))?;
    let found = out
        .responses
        .and_then(|mut r| r.remove(table))
        .map_or(0, |v| v.len());
    if found != expected {
        return Err(format!("floor read {found} of {expected} items"));
    }
    Ok(())
}

/// One raw BatchWriteItem of `n` new items shaped like unmasking records (round `round`).
pub async fn write_once(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    n: usize,
    round: u64,
) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
    let s = |v: String| AttributeValue::S(v);
    let mut writes = Vec::with_capacity(n);
    for i in 0..n {
        let sk = format!("{round:012}#floor-{i}");
        let item = std::collections::HashMap::from([
            ("pk".to_string(), s(format!("UNM#floor{i:011}"))),
            ("sk".to_string(), s(sk.clone())),
            ("gsi2pk".to_string(), s("FLOORUNMASK".into())),
            ("gsi2sk".to_string(), s(sk)),
            ("time".to_string(), AttributeValue::N(round.to_string())),
            ("id".to_string(), s(format!("01jfloor{round:020}{i:04}"))),
            ("uid".to_string(), s(format!("floor{i:011}"))),
            ("caller".to_string(), s("dev".into())),
            ("request_id".to_string(), s("bench".into())),
            ("source_ip".to_string(), s("127.0.0.1".into())),
            (
                "expires_at".to_string(),
                AttributeValue::N("4102444800".into()),
            ),
        ]);
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|e| e.to_string())?;
        writes.push(WriteRequest::builder().put_request(put).build());
    }
    let out = client
        .batch_write_item()
        .request_items(table, writes)
        .send()
        .await
        .map_err(|e| format!("floor BatchWriteItem: {e:?}"))?;
    if out.unprocessed_items.is_some_and(|u| !u.is_empty()) {
        return Err("floor BatchWriteItem left items unprocessed".into());
    }
    Ok(())
}

/// One raw conditional UpdateItem adding `n` to a counter, like the caller's budget of
/// unmaskings (round `round` is its minute, so that it never reaches the limit).
pub async fn count_once(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    n: usize,
    round: u64,
) -> Result<(), String> {
    let num = |v: String| AttributeValue::N(v);
    client
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("UNB#floor".into()))
        .key("sk", AttributeValue::S(format!("{round:012}")))
        .update_expression("ADD #n :count SET #ttl = :ttl")
        .condition_expression("attribute_not_exists(#n) OR #n <= :room")
        .expression_attribute_names("#n", "n")
        .expression_attribute_names("#ttl", "expires_at")
        .expression_attribute_values(":count", num(n.to_string()))
        .expression_attribute_values(":room", num("1000000".into()))
        .expression_attribute_values(":ttl", num("4102444800".into()))
        .send()
        .await
        .map_err(|e| format!("floor UpdateItem: {e:?}"))?;
    Ok(())
}

/// The child's side: `cc-bench --floor-worker <endpoint> <table> <attr> <pk,pk,...> <writes>`.
/// Like a function, a single-threaded runtime; blocks on stdin between requests.
pub fn worker_main(args: &[String]) -> Result<(), String> {
    let [endpoint, table, attr, pks, writes] = args else {
        return Err(format!(
            "{WORKER_FLAG} takes <endpoint> <table> <attr> <pk,pk,...> <writes>"
        ));
    };
    let writes: usize = writes.parse().map_err(|_| "<writes> is a number")?;
    let mut round = 0u64;
    let pks: Vec<String> = pks.split(',').map(str::to_string).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = client(endpoint);
    let request = request(&pks, attr)?;
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    let mut line = String::new();
    loop {
        line.clear();
        if stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(()); // the harness closed our stdin
        }
        round += 1;
        let both = async {
            let (read, write, count) = tokio::join!(
                read_once(&client, table, &request, pks.len()),
                async {
                    if writes == 0 {
                        return Ok(());
                    }
                    write_once(&client, table, writes, round).await
                },
                async {
                    if writes == 0 {
                        return Ok(());
                    }
                    count_once(&client, table, writes, round).await
                }
            );
            read.and(write).and(count)
        };
        let answer = match rt.block_on(both) {
            Ok(()) => "ok".to_string(),
            Err(e) => format!("error {}", e.replace('\n', " ")),
        };
        writeln!(stdout, "{answer}")
            .and_then(|()| stdout.flush())
            .map_err(|e| e.to_string())?;
    }
}

/// The harness's side of a floor worker.
pub struct FloorWorker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl FloorWorker {
    /// Starts the worker and makes one unmeasured read, so that its client is warm.
    pub async fn start(
        endpoint: &str,
        table: &str,
        attr: &str,
        pks: &[String],
        writes: usize,
    ) -> Result<FloorWorker, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = tokio::process::Command::new(exe)
            .args([
                WORKER_FLAG,
                endpoint,
                table,
                attr,
                &pks.join(","),
                &writes.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the floor worker: {e}"))?;
        let stdin = child.stdin.take().ok_or("floor worker: no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("floor worker: no stdout")?);
        let mut worker = FloorWorker {
            child,
            stdin,
            stdout,
            line: String::new(),
        };
        worker.sample().await?;
        Ok(worker)
    }

    /// One raw BatchGetItem in the worker, timed from the harness's request to its answer.
    pub async fn sample(&mut self) -> Result<Duration, String> {
        let t = Instant::now();
        self.stdin
            .write_all(b"go\n")
            .await
            .map_err(|e| format!("floor worker: {e}"))?;
        self.line.clear();
        self.stdout
            .read_line(&mut self.line)
            .await
            .map_err(|e| format!("floor worker: {e}"))?;
        let elapsed = t.elapsed();
        match self.line.trim_end() {
            "ok" => Ok(elapsed),
            "" => Err("the floor worker exited".into()),
            other => Err(format!("floor worker: {other}")),
        }
    }

    pub async fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait().await;
    }
}
