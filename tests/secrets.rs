//! Secrets read at init from AWS Secrets Manager (a fake speaking its JSON protocol): the PIN
//! pepper, the Fuyun secrets and the CEC AK/SK, and a clear error naming the variable when a
//! secret is missing. The SDK configuration is the Lambda binaries' own (`lambda_sdk_config`:
//! region, credentials and endpoint from the environment). One test in its own binary: it sets
//! process environment variables.

const PEPPER_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pepper-AbCdEf";
const FUYUN_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fuyun-AbCdEf";
const CEC_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:cec-AbCdEf";
const INDEX_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:index-AbCdEf";
const KEYRING_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:keyring-AbCdEf";
const MISSING_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gone-AbCdEf";

use std::sync::Arc;

use cc_shared::number_keys;
use cc_shared::resources::{Resources, StoreSet};
use cc_shared::store::embedded::EmbeddedStore;
use identity_verification::config::{pepper, PEPPER_ARN_VAR};

/// Resources as a function's `init` gets them, with `sdk` (no data directory: as in Lambda).
fn resources(sdk: Option<aws_config::SdkConfig>) -> (Resources, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let res = Resources {
        stores: StoreSet::each(store),
        sdk,
        data_dir: None,
        keyed: None,
        dev_credentials: None,
    };
    (res, dir)
}

#[tokio::test]
async fn secrets_come_from_secrets_manager_at_init() {
    let endpoint = testkit::fake_secrets_manager(vec![
        (PEPPER_ARN.into(), "p".repeat(48)),
        (
            FUYUN_ARN.into(),
            serde_json::json!({"client_secret": "cs-1", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}).to_string(),
        ),
        (
            CEC_ARN.into(),
            serde_json::json!({"app_key": "ak-1", "app_secret": "as-1"}).to_string(),
        ),
        (INDEX_ARN.into(), "i".repeat(64)),
        // What the template's GenerateSecretString makes of the keyring's first version.
        (
            KEYRING_ARN.into(),
            format!(r#"{{"current": 1, "1": "{}"}}"#, "k".repeat(64)),
        ),
    ])
    .await;
    // SAFETY: this binary has this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL_SECRETS_MANAGER", &endpoint);
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_ACCESS_KEY_ID", "local");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "local");
        std::env::set_var(PEPPER_ARN_VAR, PEPPER_ARN);
        std::env::set_var(token_exchange::SECRET_ARN_VAR, FUYUN_ARN);
        std::env::set_var(agent_sync::SECRET_ARN_VAR, CEC_ARN);
        std::env::set_var(number_keys::INDEX_KEY_ARN_VAR, INDEX_ARN);
        std::env::set_var(number_keys::KEYRING_ARN_VAR, KEYRING_ARN);
    }
    let sdk = cc_shared::aws::lambda_sdk_config().unwrap();
    let (res, _dir) = resources(Some(sdk));

    let read = pepper(&res).await.unwrap();
    assert_eq!(read.as_bytes(), "p".repeat(48).as_bytes());
    let fuyun = token_exchange::FuyunSecrets::load(&res)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fuyun.client_secret, "cs-1");
    assert!(fuyun.private_key.unwrap().contains("BEGIN PRIVATE KEY"));
    let cec = agent_sync::CecSecrets::load(&res).await.unwrap();
    assert_eq!(
        (cec.app_key.as_str(), cec.app_secret.as_str()),
        ("ak-1", "as-1")
    );

    // The number keys: read from their two secrets; a new key version is stored as a new value
    // of the keyring secret, and a serving process re-reads it when it meets that version.
    let keys = number_keys::LiveKeys::load(&res, None).await.unwrap();
    let phone = cc_shared::domain::phone::PhoneKey::from_stored("+8613988888888".into());
    let uid = cc_shared::domain::uid::Uid::parse("crm-1").unwrap();
    let old = keys.get().seal(&uid, &phone).unwrap();
    assert_eq!(old.version(), Some(1));
    assert_eq!(number_keys::add_key_version(&res).await.unwrap(), 2);
    let ring = number_keys::keyring_text(&res).await.unwrap();
    assert_eq!((ring.current, ring.keys.len()), (2, 2));
    let newer = number_keys::protection(&res).await.unwrap();
    let new = newer.seal(&uid, &phone).unwrap();
    assert_eq!(new.version(), Some(2));
    assert!(keys.get().open(&uid, &new).is_err(), "not yet re-read");
    assert_eq!(keys.reload().await.open(&uid, &new).unwrap(), phone);
    assert_eq!(
        keys.get().open(&uid, &old).unwrap(),
        phone,
        "old numbers stay readable"
    );

    // The keyring secret set back to version 1 by hand (or read by a second add-key before the
    // first stored version 2): the next add-key would make another version 2. Secrets Manager
    // refuses it (the version's token is taken), so numbers sealed with the first version 2
    // stay readable; nothing changes.
    let first_v2 = number_keys::keyring_text(&res).await.unwrap();
    let version_1 = format!(r#"{{"current": 1, "1": "{}"}}"#, "k".repeat(64));
    aws_sdk_secretsmanager::Client::new(res.sdk.as_ref().unwrap())
        .put_secret_value()
        .secret_id(KEYRING_ARN)
        .secret_string(&version_1)
        .send()
        .await
        .unwrap();
    let err = number_keys::add_key_version(&res)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("NUMBER_KEYRING_SECRET_ARN")
            && err.contains("version 2 of the keyring was already stored"),
        "{err}"
    );
    let ring = number_keys::keyring_text(&res).await.unwrap();
    assert_eq!((ring.current, ring.keys.len()), (1, 1), "nothing changed");
    // Put back as it was, the keyring goes on from version 2.
    aws_sdk_secretsmanager::Client::new(res.sdk.as_ref().unwrap())
        .put_secret_value()
        .secret_id(KEYRING_ARN)
        .secret_string(first_v2.to_json())
        .send()
        .await
        .unwrap();
    assert_eq!(number_keys::add_key_version(&res).await.unwrap(), 3);

    // A secret that is not there: an init error naming the variable, never the secret.
    unsafe { std::env::set_var(PEPPER_ARN_VAR, MISSING_ARN) };
    let err = pepper(&res).await.unwrap_err().to_string();
    assert!(err.contains("IDENTITY_PIN_PEPPER_SECRET_ARN"), "{err}");
    // A secret that is not the documented JSON.
    unsafe { std::env::set_var(agent_sync::SECRET_ARN_VAR, PEPPER_ARN) };
    let err = agent_sync::CecSecrets::load(&res)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("CEC_SECRET_ARN") && !err.contains("ppp"),
        "{err}"
    );

    // A configured secret and no SDK configuration to read it with: an init error, no request.
    let (without_sdk, _dir2) = resources(None);
    let err = pepper(&without_sdk).await.unwrap_err().to_string();
    assert!(
        err.contains("IDENTITY_PIN_PEPPER_SECRET_ARN") && err.contains("no AWS configuration"),
        "{err}"
    );
    // The Lambda configuration needs the region Lambda sets, and names it when it is missing.
    unsafe {
        std::env::remove_var("AWS_REGION");
        std::env::remove_var("AWS_DEFAULT_REGION");
    }
    let err = cc_shared::aws::lambda_sdk_config().unwrap_err().to_string();
    assert!(err.contains("AWS_REGION"), "{err}");
}
