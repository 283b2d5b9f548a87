//! Platform mode's token exchange end to end, on the embedded store and on DynamoDB Local:
//! two tenants, each with its own AICCS app (a strict fake IdP each: its own client
//! credentials, issuer, app name and agent-signing key, the JWT verified against that
//! tenant's public key), set with `tenants set` (secrets from files and standard input only),
//! served at once by the gateway. Each tenant's exchange reaches its own IdP only; caches are
//! apart; a hanging IdP of one tenant does not hold the other's answers; a changed setting
//! drops the tenant's cached tokens; `tenants remove` leaves none of its secrets anywhere.

use crate::numbers_cli::{on_backend, Cli};
use crate::support;
use support::cli::{post, spawn};
use support::fake_idp::{decoding_key, App, Behavior, FakeIdp, JwtExpectation, KeyPair};

use cc_shared::web::auth::basic_header;

/// One tenant's AICCS app: its fake IdP, its key pair, its secret values.
struct TenantApp {
    id: &'static str,
    idp: FakeIdp,
    keys: KeyPair,
    app: App,
}

async fn tenant_app(id: &'static str) -> TenantApp {
    let keys = KeyPair::generate();
    let app = App {
        client_id: format!("{id}-client"),
        client_secret: format!("{id}-client-secret-7f3a9c"),
        scope: "user_management,hotline".into(),
        redirect_url: format!("https://crm.example.com/{id}/callback"),
        issuer: format!("https://{id}.crm.example.com"),
        app_name: format!("{id}app"),
    };
    let idp = FakeIdp::start_for(
        JwtExpectation {
            key: decoding_key(&keys),
            exp_millis: false,
        },
        app.clone(),
    )
    .await;
    TenantApp { id, idp, keys, app }
}

/// The `tenants set` arguments of `t`'s whole app; secrets in files under `dir`.
fn settings_args(t: &TenantApp, dir: &std::path::Path) -> Vec<String> {
    let secret = dir.join(format!("{}-secret", t.id));
    let key = dir.join(format!("{}-key.pem", t.id));
    std::fs::write(&secret, format!("{}\n", t.app.client_secret)).unwrap();
    std::fs::write(&key, &t.keys.private_pem).unwrap();
    vec![
        format!("FUYUN_CLIENT_ID={}", t.app.client_id),
        format!("FUYUN_CLIENT_SECRET=@{}", secret.display()),
        format!("FUYUN_PRIVATE_KEY=@{}", key.display()),
        format!("FUYUN_SCOPE={}", t.app.scope),
        format!("FUYUN_REDIRECT_URL={}", t.app.redirect_url),
        format!("FUYUN_ISSUER={}", t.app.issuer),
        format!("FUYUN_APP_NAME={}", t.app.app_name),
        format!("FUYUN_TOKEN_URL={}", t.idp.url),
    ]
}

fn set(cli: &Cli, id: &str, args: &[String]) -> (bool, String, String) {
    let mut all = vec!["tenants", "set", id];
    all.extend(args.iter().map(String::as_str));
    cli.run(&all)
}

/// A new token-exchange credential of `tenant`: its password.
fn credential(cli: &Cli, tenant: &str) -> String {
    crate::platform::credential(cli, "crm", tenant, "token-exchange")
}

/// (status, body) of a JWT-mode exchange for `account` as `auth`.
fn exchange(addr: &str, auth: &str, account: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({"mode": "jwt", "accountName": account}).to_string();
    let (status, body) = post(addr, "/token-exchange", Some(auth), &body);
    (status, serde_json::from_str(&body).unwrap())
}

/// What a tenant's secret values look like anywhere: the client secret, and the private key's
/// base64 body (a line of it is enough to spot a copy).
fn secret_marks(t: &TenantApp) -> Vec<String> {
    vec![
        t.app.client_secret.clone(),
        t.keys.private_base64[..64].into(),
    ]
}

/// The refusals of `tenants set`: nothing is changed by any of them.
fn refusals(cli: &Cli, acme: &TenantApp, dir: &std::path::Path) {
    let all = settings_args(acme, dir);
    let literal = set(cli, "acme", &["FUYUN_CLIENT_SECRET=hunter2-literal".into()]);
    assert!(!literal.0 && literal.2.contains("@FILE"), "{literal:?}");
    assert!(
        !literal.2.contains("hunter2"),
        "the literal secret was echoed"
    );
    let cases: [(&str, &str, &str); 4] = [
        (
            "FUYUN_TOKEN_URL",
            "http://idp.example.com/x",
            "FUYUN_TOKEN_URL",
        ),
        ("FUYUN_JWT_TTL_SECONDS", "5", "FUYUN_JWT_TTL_SECONDS"),
        ("FUYUN_SCOPE", "", "FUYUN_SCOPE is not set"),
        ("FUYUN_CLIENT", "x", "not a tenant setting"),
    ];
    for (name, value, says) in cases {
        let mut args: Vec<String> = all
            .iter()
            .filter(|a| !a.starts_with(&format!("{name}=")))
            .cloned()
            .collect();
        args.push(format!("{name}={value}"));
        let (ok, _, stderr) = set(cli, "acme", &args);
        assert!(!ok && stderr.contains(says), "{name}: {stderr}");
    }
    let bad_key = dir.join("not-a-key.pem");
    std::fs::write(
        &bad_key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let mut args: Vec<String> = all
        .iter()
        .filter(|a| !a.starts_with("FUYUN_PRIVATE_KEY="))
        .cloned()
        .collect();
    args.push(format!("FUYUN_PRIVATE_KEY=@{}", bad_key.display()));
    let (ok, _, stderr) = set(cli, "acme", &args);
    assert!(!ok && stderr.contains("FUYUN_PRIVATE_KEY"), "{stderr}");
    let (ok, _, stderr) = set(cli, "nobody", &all);
    assert!(!ok && stderr.contains("no tenant nobody"), "{stderr}");
    let show = cli.ok(&["tenants", "show", "acme", "--json"]);
    let show: serde_json::Value = serde_json::from_str(&show).unwrap();
    assert_eq!(
        show["settings_revision"], 0,
        "a refused set changed something"
    );
}

/// Sets globex's private key from standard input (`NAME=-`), the rest from files.
fn set_from_stdin(cli: &Cli, globex: &TenantApp, dir: &std::path::Path) {
    let mut args: Vec<String> = settings_args(globex, dir)
        .into_iter()
        .filter(|a| !a.starts_with("FUYUN_PRIVATE_KEY="))
        .collect();
    args.push("FUYUN_PRIVATE_KEY=-".into());
    let mut all = vec!["tenants", "set", "globex"];
    all.extend(args.iter().map(String::as_str));
    let (ok, stdout, stderr) = cli.run_with_stdin(&all, globex.keys.private_pem.as_bytes());
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("set FUYUN_CLIENT_ID") && stdout.contains("revision 1"),
        "{stdout}"
    );
}

fn token_of(answer: &(u16, serde_json::Value)) -> String {
    assert_eq!(answer.0, 200, "{}", answer.1);
    answer.1["access_token"].as_str().unwrap().to_string()
}

/// The scenario on the store `cli` uses; `dump` prints every byte the store holds.
fn tenants_exchange_apart(cli: &Cli, dump: &dyn Fn() -> String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    let (acme, globex) =
        rt.block_on(async { (tenant_app("acme").await, tenant_app("globex").await) });
    for id in ["acme", "globex", "initech"] {
        cli.ok(&["tenants", "add", id]);
    }
    refusals(cli, &acme, dir);
    let out = set(cli, "acme", &settings_args(&acme, dir));
    assert!(out.0, "{out:?}");
    set_from_stdin(cli, &globex, dir);
    let show = cli.ok(&["tenants", "show", "acme"]);
    assert!(
        show.contains(&acme.app.client_id)
            && show.contains(&acme.app.issuer)
            && show
                .lines()
                .any(|l| l.contains("FUYUN_CLIENT_SECRET") && l.contains("(set)"))
            && show
                .lines()
                .any(|l| l.contains("CEC_APP_SECRET") && l.contains("(unset)")),
        "{show}"
    );
    let stored = dump();
    for t in [&acme, &globex] {
        for mark in secret_marks(t) {
            assert!(!show.contains(&mark), "tenants show printed a secret");
            assert!(
                !stored.contains(&mark),
                "a secret is in the store in the clear"
            );
        }
    }
    let (acme_pw, globex_pw, initech_pw) = (
        credential(cli, "acme"),
        credential(cli, "globex"),
        credential(cli, "initech"),
    );
    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0")
        .env("FUYUN_TIMEOUT_MS", "3000");
    let gw = spawn(cmd);
    let acme_auth = basic_header("crm@acme", &acme_pw);
    let globex_auth = basic_header("crm@globex", &globex_pw);

    // No default AICCS app on this stack, and initech has no settings: 503 saying what to set.
    let (status, body) = exchange(&gw.addr, &basic_header("dev", "dev"), "agent007");
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("temporarily_unavailable"))
    );
    let (status, body) = exchange(&gw.addr, &basic_header("crm@initech", &initech_pw), "a");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("tenants set initech"),
        "{body}"
    );

    // Each tenant at its own IdP, with its own key and credentials; caches apart.
    let a1 = token_of(&exchange(&gw.addr, &acme_auth, "agent007"));
    let g1 = token_of(&exchange(&gw.addr, &globex_auth, "agent007"));
    assert_ne!(a1, g1);
    assert_eq!((acme.idp.requests(), globex.idp.requests()), (1, 1));
    assert_eq!(token_of(&exchange(&gw.addr, &acme_auth, "agent007")), a1);
    assert_eq!(token_of(&exchange(&gw.addr, &globex_auth, "agent007")), g1);
    assert_eq!((acme.idp.requests(), globex.idp.requests()), (1, 1));
    // OAuth mode at acme's app name.
    let (status, body) = post(
        &gw.addr,
        "/token-exchange",
        Some(&acme_auth),
        r#"{"mode":"oauth","subjectToken":"crm-token-1"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(acme.idp.requests(), 2);

    // globex's IdP hangs: acme is answered meanwhile, globex gets 504 in its own time.
    globex.idp.set(Behavior::Hang);
    let before = globex.idp.requests();
    let hanging = {
        let (addr, auth) = (gw.addr.clone(), globex_auth.clone());
        std::thread::spawn(move || exchange(&addr, &auth, "agent008"))
    };
    // Until the hanging request is at globex's IdP (a notification may be left over from an
    // earlier request: the count decides).
    rt.block_on(async {
        loop {
            let arrived = globex.idp.first_request();
            if globex.idp.requests() > before {
                break;
            }
            arrived.await;
        }
    });
    let a2 = token_of(&exchange(&gw.addr, &acme_auth, "agent008"));
    assert!(
        !hanging.is_finished(),
        "globex's exchange ended before acme's was answered"
    );
    assert_eq!(hanging.join().unwrap().0, 504);
    assert_ne!(a2, a1);

    // A changed setting drops acme's cached tokens: the next exchange goes to its IdP.
    cli.ok(&["tenants", "set", "acme", "FUYUN_JWT_TTL_SECONDS=600"]);
    let before = acme.idp.requests();
    let a3 = token_of(&exchange(&gw.addr, &acme_auth, "agent007"));
    assert_ne!(a3, a1);
    assert_eq!(acme.idp.requests(), before + 1);
    acme.idp.assert_no_violations();
    globex.idp.assert_no_violations();

    // globex removed: none of its secrets, settings or audit records left; acme's kept.
    let out = cli.ok(&["tenants", "remove", "globex", "--yes"]);
    assert!(out.contains("removed tenant globex"), "{out}");
    let stored = dump();
    for mark in secret_marks(&globex)
        .into_iter()
        .chain([globex.app.client_id.clone(), "crm@globex".into()])
    {
        assert!(
            !stored.contains(&mark),
            "{mark} is left after tenants remove"
        );
    }
    assert!(stored.contains(&acme.app.client_id) && stored.contains("crm@acme"));
    let log = gw.log.lock().unwrap().clone();
    for mark in secret_marks(&acme).into_iter().chain(secret_marks(&globex)) {
        assert!(!log.contains(&mark), "a secret is in the gateway's log");
    }
    for token in [&a1, &g1, &a2, &a3] {
        assert!(
            !log.contains(token.as_str()),
            "a token is in the gateway's log"
        );
    }
    drop(gw);
}

#[test]
fn tenants_exchange_at_their_own_idp_embedded() {
    on_backend(false, "cc-platform-token", tenants_exchange_apart);
}

#[test]
fn tenants_exchange_at_their_own_idp_dynamodb() {
    on_backend(true, "cc-platform-token", tenants_exchange_apart);
}
