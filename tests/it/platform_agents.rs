//! Platform mode's agent directory: each tenant's agents, links, sync state apart in the store
//! (both backends); two tenants, each with its own strict fake CEC (its own AK/SK and
//! directory), set with `tenants set`, synced and linked with `agents ... --tenant`, served
//! by the gateway's softphone endpoint per tenant; `tenants list` shows when each last synced;
//! `tenants remove` leaves nothing of a tenant's directory or its CEC secret.

use std::sync::Arc;

use crate::numbers_cli::{on_backend, Cli};
use crate::support;
use support::cli::{post, spawn};
use support::fake_cec::{directory, Behavior, FakeCec, SIP_PASSWORDS};

use cc_shared::domain::agents::{Agent, SyncCounts, SyncState};
use cc_shared::domain::tenant::TenantId;
use cc_shared::store::{AgentStore, TenantRegistry};
use cc_shared::web::auth::basic_header;

fn agent(work_no: &str) -> Agent {
    Agent {
        work_no: work_no.into(),
        account_code: Some(format!("acc{work_no}")),
        sip_account: None,
        active: true,
        first_seen: 1,
        last_seen: 1,
        inactive_since: None,
    }
}

/// The default tenant's directory and acme's, in one store: nothing of one is seen in the
/// other, and erasing acme removes its directory only.
async fn directories_apart(
    default: Arc<dyn AgentStore>,
    acme: Arc<dyn AgentStore>,
    registry: Arc<dyn TenantRegistry>,
) {
    let id = TenantId::parse("acme").unwrap();
    default.put_agents(&[agent("1001")]).await.unwrap();
    acme.put_agents(&[agent("1001"), agent("2002")])
        .await
        .unwrap();
    let works = |v: Vec<Agent>| v.into_iter().map(|a| a.work_no).collect::<Vec<_>>();
    assert_eq!(works(default.list_agents().await.unwrap()), ["1001"]);
    assert_eq!(works(acme.list_agents().await.unwrap()), ["1001", "2002"]);
    assert_eq!(default.get_agent("2002").await.unwrap(), None);
    assert_eq!(acme.get_agent("2002").await.unwrap(), Some(agent("2002")));
    default.link_account("alice", "1001").await.unwrap();
    acme.link_account("alice", "2002").await.unwrap();
    assert_eq!(
        default.linked_work_no("alice").await.unwrap().as_deref(),
        Some("1001")
    );
    assert_eq!(
        acme.linked_work_no("alice").await.unwrap().as_deref(),
        Some("2002")
    );
    // A default-tenant account spelled like a tenant's key reaches nothing of the tenant.
    assert_eq!(default.linked_work_no("T#acme#alice").await.unwrap(), None);
    let state = |at| SyncState {
        at,
        counts: SyncCounts::default(),
    };
    default.put_last_sync(&state(10)).await.unwrap();
    acme.put_last_sync(&state(20)).await.unwrap();
    assert_eq!(default.last_sync().await.unwrap(), Some(state(10)));
    assert_eq!(acme.last_sync().await.unwrap(), Some(state(20)));
    assert_eq!(default.sync_cursor().await.unwrap(), None);
    default.put_sync_cursor(Some("acme")).await.unwrap();
    assert_eq!(
        default.sync_cursor().await.unwrap().as_deref(),
        Some("acme")
    );
    default.put_sync_cursor(None).await.unwrap();
    assert_eq!(default.sync_cursor().await.unwrap(), None);

    // acme's erasure (`tenants remove`) takes its directory, never the default tenant's.
    for segment in 0..registry.erase_segments() {
        let mut start = None;
        loop {
            let (_, next) = registry
                .erase_page(&id, segment, registry.erase_segments(), start)
                .await
                .unwrap();
            match next {
                Some(n) => start = Some(n),
                None => break,
            }
        }
    }
    assert!(acme.list_agents().await.unwrap().is_empty());
    assert_eq!(acme.linked_work_no("alice").await.unwrap(), None);
    assert_eq!(acme.last_sync().await.unwrap(), None);
    assert_eq!(works(default.list_agents().await.unwrap()), ["1001"]);
    assert_eq!(
        default.linked_work_no("alice").await.unwrap().as_deref(),
        Some("1001")
    );
    assert_eq!(default.last_sync().await.unwrap(), Some(state(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_directory_is_kept_apart_embedded() {
    let (store, _dir) = support::embedded_store();
    let acme = Arc::new(store.for_tenant(&TenantId::parse("acme").unwrap()));
    directories_apart(store.clone(), acme, store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_directory_is_kept_apart_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    let acme = Arc::new(store.for_tenant(&TenantId::parse("acme").unwrap()));
    directories_apart(store.clone(), acme, store).await;
}

/// A tenant's fake CEC and its secret.
struct TenantCec {
    id: &'static str,
    cec: FakeCec,
    app_secret: String,
}

async fn tenant_cec(id: &'static str, work_nos: &[u64]) -> TenantCec {
    let app_secret = format!("{id}-cec-app-secret-5e2b");
    let cec = FakeCec::start_with(&format!("{id}-ak"), &app_secret).await;
    cec.set(Behavior::Directory(directory(work_nos, false)));
    TenantCec {
        id,
        cec,
        app_secret,
    }
}

fn set_cec(cli: &Cli, t: &TenantCec, dir: &std::path::Path) {
    let file = dir.join(format!("{}-cec-secret", t.id));
    std::fs::write(&file, &t.app_secret).unwrap();
    let out = cli.ok(&[
        "tenants",
        "set",
        t.id,
        &format!("CEC_BASE_URL={}", t.cec.base_url),
        &format!("CEC_APP_KEY={}-ak", t.id),
        &format!("CEC_APP_SECRET=@{}", file.display()),
    ]);
    assert!(
        out.contains("set CEC_BASE_URL, CEC_APP_KEY, CEC_APP_SECRET"),
        "{out}"
    );
}

fn softphone_credential(cli: &Cli, tenant: &str) -> String {
    crate::platform::credential(cli, "crm", tenant, "agent-sync")
}

/// `tenants list --json`: (agents_synced is set, agents_stale) of tenant `id`.
fn synced_of(cli: &Cli, id: &str) -> (bool, bool) {
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["tenants", "list", "--json"])).unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone();
    (
        row["agents_synced"].is_string(),
        row["agents_stale"].as_bool().unwrap(),
    )
}

fn tenants_directories(cli: &Cli, dump: &dyn Fn() -> String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (acme, globex) = rt.block_on(async {
        (
            tenant_cec("acme", &[1001, 1002]).await,
            tenant_cec("globex", &[1003]).await,
        )
    });
    for id in ["acme", "globex", "initech"] {
        cli.ok(&["tenants", "add", id]);
    }
    // A refused CEC setting changes nothing.
    let secret = files.path().join("secret");
    std::fs::write(&secret, "s").unwrap();
    let (ok, _, stderr) = cli.run(&[
        "tenants",
        "set",
        "acme",
        "CEC_BASE_URL=http://cec.example.com",
        "CEC_APP_KEY=k",
        &format!("CEC_APP_SECRET=@{}", secret.display()),
    ]);
    assert!(
        !ok && stderr.contains("CEC_BASE_URL") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    set_cec(cli, &acme, files.path());
    set_cec(cli, &globex, files.path());
    assert_eq!(synced_of(cli, "acme"), (false, true), "never synced: stale");
    assert_eq!(
        synced_of(cli, "initech"),
        (false, false),
        "no CEC: not stale"
    );

    for t in [&acme, &globex] {
        let out = cli.ok(&["agents", "sync", "--tenant", t.id]);
        assert!(out.contains("added"), "{out}");
    }
    let (ok, _, stderr) = cli.run(&["agents", "sync", "--tenant", "initech"]);
    assert!(!ok && stderr.contains("tenants set initech"), "{stderr}");
    let listed = cli.ok(&["agents", "list", "--tenant", "acme", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let works: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["work_no"].as_str().unwrap())
        .collect();
    assert_eq!(works, ["1001", "1002"]);
    assert_eq!(synced_of(cli, "acme"), (true, false));
    // The same account name, linked to each tenant's own agent; 1003 is not acme's.
    let (ok, _, stderr) = cli.run(&["agents", "link", "alice", "1003", "--tenant", "acme"]);
    assert!(!ok && stderr.contains("not in the directory"), "{stderr}");
    cli.ok(&["agents", "link", "alice", "1002", "--tenant", "acme"]);
    cli.ok(&["agents", "link", "alice", "1003", "--tenant", "globex"]);

    let (acme_pw, globex_pw, initech_pw) = (
        softphone_credential(cli, "acme"),
        softphone_credential(cli, "globex"),
        softphone_credential(cli, "initech"),
    );
    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    let softphone = |user: &str, password: &str| {
        let (status, body) = post(
            &gw.addr,
            "/agents/softphone",
            Some(&basic_header(user, password)),
            r#"{"account": "alice"}"#,
        );
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let (status, a) = softphone("crm@acme", &acme_pw);
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (a["workNo"].as_str(), a["sipPwd"].as_str()),
        (Some("1002"), Some(SIP_PASSWORDS[1]))
    );
    let (status, g) = softphone("crm@globex", &globex_pw);
    assert_eq!(status, 200, "{g}");
    assert_eq!(g["workNo"].as_str(), Some("1003"));
    let (status, i) = softphone("crm@initech", &initech_pw);
    assert_eq!(status, 503, "{i}");
    assert!(
        i["message"]
            .as_str()
            .unwrap()
            .contains("tenants set initech"),
        "{i}"
    );
    // No default CEC on this gateway: the default tenant's caller gets 503 too.
    assert_eq!(softphone("dev", "dev").0, 503);
    // globex's CEC stalls: acme is still answered.
    globex.cec.set(Behavior::Stall);
    assert_eq!(softphone("crm@acme", &acme_pw).0, 200);
    acme.cec.assert_no_violations();
    globex.cec.assert_no_violations();

    cli.ok(&["tenants", "remove", "globex", "--yes"]);
    let stored = dump();
    assert!(
        !stored.contains(&globex.app_secret),
        "globex's CEC secret is left"
    );
    assert!(!stored.contains("globex-ak"), "globex's settings are left");
    assert!(
        !stored.contains(&acme.app_secret),
        "acme's CEC secret is in the clear"
    );
    let (ok, _, stderr) = cli.run(&["agents", "list", "--tenant", "globex"]);
    assert!(!ok && stderr.contains("no tenant globex"), "{stderr}");
    let log = gw.log.lock().unwrap().clone();
    for secret in [
        &acme.app_secret,
        &globex.app_secret,
        &SIP_PASSWORDS[1].to_string(),
    ] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the gateway's log"
        );
    }
}

#[test]
fn tenants_directories_from_their_own_cec_embedded() {
    on_backend(false, "cc-platform-agents", tenants_directories);
}

#[test]
fn tenants_directories_from_their_own_cec_dynamodb() {
    on_backend(true, "cc-platform-agents", tenants_directories);
}
