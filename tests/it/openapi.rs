//! `openapi.yaml` against the code: it describes exactly the gateway's routes, and
//! schemathesis (pinned, installed by `scripts/setup`) finds nothing against the local gateway
//! serving every callback (the fake IdP and CEC behind it, a PIN enrolled and an account
//! linked so that the documented examples reach their success answers). The sample events and
//! every handler answer of the other tests are checked by `support::openapi`.

use crate::support;
use crate::support::cli::{command, spawn};

use std::path::Path;

#[test]
fn the_document_describes_exactly_the_gateway_routes() {
    let doc = support::openapi::contract().document();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut routes = cc_callbacks::functions::routes().collect::<Vec<_>>();
    documented.sort_unstable();
    routes.sort_unstable();
    assert_eq!(documented, routes);
    assert_eq!(doc["security"], serde_json::json!([{"basicAuth": []}]));
    for (path, item) in paths {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["post"], "{path}");
        let responses = item["post"]["responses"].as_object().unwrap();
        for status in ["200", "401", "413", "429", "500", "503", "504"] {
            assert!(responses.contains_key(status), "{path} lacks {status}");
        }
    }
}

/// Where `scripts/setup` installs schemathesis.
fn schemathesis() -> std::path::PathBuf {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/schemathesis/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/setup (scripts/test does)",
        st.display()
    );
    st
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_local_gateway() {
    use support::fake_cec::{self, FakeCec};
    use support::fake_idp::*;
    let st = schemathesis();
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let cec = FakeCec::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(&str, String)> = vec![
        ("FUYUN_TOKEN_URL", idp.url.clone()),
        ("FUYUN_CLIENT_ID", CLIENT_ID.into()),
        ("FUYUN_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("FUYUN_SCOPE", SCOPE.into()),
        ("FUYUN_REDIRECT_URL", REDIRECT_URL.into()),
        ("FUYUN_ISSUER", ISSUER.into()),
        ("FUYUN_PRIVATE_KEY", keys.private_base64.clone()),
        ("FUYUN_APP_NAME", APP_NAME.into()),
        ("CEC_BASE_URL", cec.base_url.clone()),
        ("CEC_APP_KEY", fake_cec::APP_KEY.into()),
        ("CEC_APP_SECRET", fake_cec::APP_SECRET.into()),
    ];

    // The examples' customer and account: 13988888888 with PIN 4321, alice linked to 1002.
    let pins = dir.path().join("pins.csv");
    std::fs::write(&pins, "number,pin\n13988888888,4321\n").unwrap();
    let data = dir.path().join("data");
    let setup_env = env.clone();
    let outputs = tokio::task::spawn_blocking({
        let data = data.clone();
        move || {
            let run = |args: &[&str]| {
                command(&data)
                    .envs(setup_env.iter().map(|(k, v)| (*k, v.as_str())))
                    .args(args)
                    .output()
                    .unwrap()
            };
            [
                run(&["pins", "import", pins.to_str().unwrap()]),
                run(&["agents", "sync"]),
                run(&["agents", "link", "alice", "1002"]),
            ]
        }
    })
    .await
    .unwrap();
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let mut cmd = command(&data);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let gw = spawn(cmd);
    let root = env!("CARGO_MANIFEST_DIR");
    let out = tokio::process::Command::new(st)
        .current_dir(root)
        // schemathesis.toml (found in the working directory) holds the seed, the number of
        // examples per operation and the vendor-dictated exceptions, with their reasons.
        .args(["run", "openapi.yaml", "--url"])
        .arg(format!("http://{}", gw.addr))
        .args(["--auth", "dev:dev", "--no-color"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every operation was exercised, and not trivially.
    assert!(stdout.contains("Tested: 4"), "{stdout}");
    assert!(stdout.contains("No issues found"), "{stdout}");
    let generated: usize = stdout
        .lines()
        .find_map(|l| l.trim().split_once(" generated"))
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no test-case count:\n{stdout}"));
    assert!(generated >= 400, "only {generated} test cases:\n{stdout}");
    // The fakes saw nothing outside the vendors' contracts.
    idp.assert_no_violations();
    cec.assert_no_violations();
    assert!(idp.requests() > 0, "the IdP was never reached");
    drop(gw);
}
