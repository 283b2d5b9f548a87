//! Times the scheduled agent sync's round of platform tenants (`agent_sync::run`, in one
//! process) against DynamoDB Local and fake CECs: `TENANTS` tenants (default 100), each with
//! its own CEC settings sealed in the registry, spread over 4 fake CECs of `AGENTS` agents each
//! (default 50): the first run (every agent added), then a second (nothing changed), each at
//! concurrency 8 and at the configured concurrency `CONCURRENCY` (default 8).
//!
//! ```sh
//! scripts/dynamodb-local start 8000
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
//!   cargo run --release -p cc-bench --example tenant_sync_round
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_sync::config::{CecTimeouts, RunLimits};
use agent_sync::{Platform, Scheduler};
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::tenant::{Tenant, TenantId, TenantKeys};
use cc_shared::domain::tenant_settings::TenantSettings;
use cc_shared::resources::StoreSet;
use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::TenantRegistry;
use testkit::fake_cec::{directory, Behavior, FakeCec};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let (tenants, agents) = (setting("TENANTS", 100), setting("AGENTS", 50));
    let concurrency = setting("CONCURRENCY", 8);
    let client = cc_shared::store::dynamo::lambda_client().expect("AWS_REGION");
    let table = format!("tenant-sync-{}", std::process::id());
    let store = Arc::new(DynamoStore::new(client, table));
    store.create_table().await.expect("table");
    let stack = NumberProtection::generate().expect("keys");

    let work_nos: Vec<u64> = (0..agents as u64).map(|i| 1001 + i).collect();
    let mut cecs = Vec::new();
    for i in 0..4 {
        let cec = FakeCec::start_with(&format!("ak-{i}"), &format!("sk-{i}")).await;
        cec.set(Behavior::Directory(directory(&work_nos, false)));
        cecs.push(cec);
    }
    for t in 0..tenants {
        let id = TenantId::parse(&format!("t{t:04}")).expect("id");
        let keys = TenantKeys::generate().expect("tenant keys");
        let tenant = Tenant::new(id.clone(), String::new(), 0, &keys, &stack).expect("wrap");
        store.add_tenant(&tenant).await.expect("tenant");
        let cec = t % cecs.len();
        let mut settings = TenantSettings::default();
        for (name, value) in [
            ("CEC_BASE_URL", cecs[cec].base_url.clone()),
            ("CEC_APP_KEY", format!("ak-{cec}")),
            ("CEC_APP_SECRET", format!("sk-{cec}")),
        ] {
            settings.set(name, Some(value)).expect("setting");
        }
        let sealed = settings
            .seal(&keys.lookup().expect("lookup").settings, &id, 1)
            .expect("seal");
        store.set_settings(&id, 0, &sealed).await.expect("settings");
    }

    let limits = RunLimits {
        concurrency,
        run_budget: Duration::from_secs(50),
        tenant_budget: Duration::from_secs(20),
        per_run: 100_000,
        stale_after_seconds: 3 * 3600,
    };
    let scheduler = Arc::new(Scheduler {
        default: None,
        store: store.clone(),
        platform: Some(Platform {
            listing: store.clone(),
            stores: StoreSet::Dynamo(store.clone()),
            index: stack.index.clone(),
            timeouts: CecTimeouts {
                connect: Duration::from_secs(2),
                total: Duration::from_secs(10),
            },
            clients: Default::default(),
        }),
        limits,
    });
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    println!("{tenants} tenants, {agents} agents each, {concurrency} at a time");
    for run in [
        "first run (every agent added)",
        "second run (nothing changed)",
    ] {
        let started = Instant::now();
        let report = agent_sync::run(scheduler.clone(), clock.clone())
            .await
            .expect("run");
        let elapsed = started.elapsed();
        assert_eq!(report.tenants_synced, tenants, "{report:?}");
        println!(
            "{run}: {:.2} s for {} tenants ({:.0} ms a tenant, {:.1} tenants/s); left {}",
            elapsed.as_secs_f64(),
            report.tenants_synced,
            elapsed.as_secs_f64() * 1000.0 / tenants as f64 * concurrency as f64,
            tenants as f64 / elapsed.as_secs_f64(),
            report.tenants_left
        );
    }
}
