//! `cc-callbacks preflight` against a fake Lambda control plane (`testkit::fake_lambda`, which
//! allows only the three signed reads): a stage's reservations, from samconfig.toml over the
//! template's defaults, checked against a small and a large account quota, counting what other
//! stacks and the stage itself already reserve.

use testkit::fake_lambda::{Account, FakeLambda};

/// Runs `cc-callbacks preflight --config-env ENV` against the fake at `url`.
fn preflight(url: &str, env: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cc-callbacks"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["preflight", "--config-env", env])
        .env_remove("AWS_PROFILE")
        .env("AWS_ENDPOINT_URL_LAMBDA", url)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_quota_takes_dev_but_not_prod() {
    // A new account: 10 concurrent executions, nothing reserved.
    let lambda = FakeLambda::start(Account {
        limit: 10,
        functions: vec![("someone-else".into(), None)],
    })
    .await;
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let url = lambda.url.clone();
        move || preflight(&url, "dev")
    })
    .await
    .unwrap();
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("reserves no concurrency"), "{stdout}");
    let (ok, stdout, stderr) = tokio::task::spawn_blocking({
        let url = lambda.url.clone();
        move || preflight(&url, "prod")
    })
    .await
    .unwrap();
    assert!(!ok, "191 reserved on a 10-execution account: {stdout}");
    assert!(stdout.contains("reserves 191"), "{stdout}");
    assert!(
        stderr.contains("does not fit")
            && stderr.contains("L-B99A9384")
            && stderr.contains("0 means no reservation"),
        "{stderr}"
    );
    assert_eq!(lambda.deviations(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_quota_takes_every_stage_counting_what_is_reserved() {
    // 1,000 executions; another stack reserves 300, prod (deployed) its 191.
    let prod = [
        ("NumberMappingFunction", 100),
        ("IdentityVerificationFunction", 50),
        ("TokenExchangeFunction", 20),
        ("AgentDirectoryFunction", 20),
        ("AgentSyncFunction", 1),
    ];
    let mut functions: Vec<(String, Option<i64>)> = prod
        .iter()
        .map(|(f, n)| (format!("cc-callbacks-prod-{f}-AbC123"), Some(*n)))
        .collect();
    functions.push(("other-stack-Worker-XyZ".into(), Some(300)));
    functions.push(("other-stack-Cron-XyZ".into(), None));
    let lambda = FakeLambda::start(Account {
        limit: 1000,
        functions,
    })
    .await;
    for (env, now) in [("prod", 191), ("staging", 0)] {
        let url = lambda.url.clone();
        let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || preflight(&url, env))
            .await
            .unwrap();
        assert!(ok, "{env}: {stdout}{stderr}");
        assert!(
            stdout.contains("concurrency limit 1000, unreserved now 509")
                && stdout.contains(&format!("reserved by this stack now {now}")),
            "{env}: {stdout}"
        );
        let after = 509 + now - 191;
        assert!(
            stdout.contains(&format!("fits: {after} would stay unreserved")),
            "{env}: {stdout}"
        );
    }
    assert_eq!(lambda.deviations(), Vec::<String>::new());
}
