//! The data every scenario runs against: a fresh table behind the counting proxy with 100
//! known numbers, a PIN, the agent directory and a link, and the vendor fakes.

use std::time::Duration;

use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::{AgentStore, IdentityStore, MappingStore};

use crate::floor;
use crate::scenarios::{PEPPER, TENANT, TENANT_PASSWORD, TENANT_USER};

pub(crate) struct Seed {
    pub(crate) proxy: testkit::fault_proxy::FaultProxy,
    /// A client of the harness's own (the floor measured in the harness, the warm-up).
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
    pub(crate) numbers: Vec<String>,
    pub(crate) uid_list: Vec<String>,
    pub(crate) phone_pks: Vec<String>,
    /// The same 100 numbers mapped for the tenant `TENANT` (platform mode), its number items.
    pub(crate) tenant_phone_pks: Vec<String>,
    pub(crate) cec: testkit::fake_cec::FakeCec,
    pub(crate) idp: testkit::fake_idp::FakeIdp,
    pub(crate) keys_pair: testkit::fake_idp::KeyPair,
}

pub(crate) async fn seed(endpoint: &str) -> Result<Seed, String> {
    let proxy = testkit::fault_proxy::FaultProxy::start(endpoint).await;
    let table = format!(
        "cc-bench-{}",
        cc_shared::domain::uid::Uid::generate().map_err(|e| e.to_string())?
    );
    let client = floor::client(&proxy.url);
    let store = DynamoStore::new(client.clone(), table.clone());
    store.create_table().await.map_err(|e| e.to_string())?;

    // Seed: 100 known numbers, a PIN, the agent directory and a link.
    let phones =
        cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).map_err(|e| e.to_string())?;
    let numbers: Vec<String> = (0..100).map(|i| format!("1390000{i:04}")).collect();
    let keys = numbers
        .iter()
        .map(|n| phones.normalize(n).map_err(|e| format!("seed number: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    // As the number-mapping handler does: the store is given indexes and sealed numbers.
    let protection = crate::scenarios::keys()?;
    let indexes: Vec<_> = keys.iter().map(|k| protection.index(k)).collect();
    let by_index: std::collections::HashMap<_, _> =
        indexes.iter().cloned().zip(keys.iter().cloned()).collect();
    let sealing = protection.clone();
    let seal: cc_shared::store::Sealer = std::sync::Arc::new(move |index, uid| {
        let phone = by_index
            .get(index)
            .ok_or_else(|| cc_shared::store::StoreError::Failed("unknown index".into()))?;
        sealing
            .seal(uid, phone)
            .map_err(|e| cc_shared::store::StoreError::Failed(e.to_string()))
    });
    let uids = store
        .create_uids(&indexes, &seal)
        .await
        .map_err(|e| e.to_string())?;
    let uid_list: Vec<String> = indexes.iter().map(|k| uids[k].to_string()).collect();
    let phone_pks: Vec<String> = indexes
        .iter()
        .map(|k| format!("NUM#{}", k.as_str()))
        .collect();
    let pepper = cc_shared::domain::identity::Pepper::new(PEPPER.as_bytes().to_vec())?;
    store
        .put_pins(&[(indexes[0].clone(), pepper.pin_digest(&keys[0], "2468"))])
        .await
        .map_err(|e| e.to_string())?;
    // The same customer's ID digits, for the scenario of a mode (IDCARD=id_last6).
    let id_last6 = cc_shared::domain::factor::Factor::IdLast6;
    store
        .put_factors(
            id_last6,
            &[(
                indexes[0].clone(),
                pepper.factor_digest(id_last6, &keys[0], "31002X"),
            )],
        )
        .await
        .map_err(|e| e.to_string())?;
    let cec = testkit::fake_cec::FakeCec::start().await;
    let cec_client = agent_sync::cec_client::CecClient::new(agent_sync::cec_client::CecSettings {
        base_url: cec.base_url.clone(),
        agent_info_path: testkit::fake_cec::AGENTS_PATH.into(),
        app_key: testkit::fake_cec::APP_KEY.into(),
        app_secret: testkit::fake_cec::APP_SECRET.into(),
        token_expire_seconds: 3600,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        tenant_space_id: None,
    })
    .map_err(|e| e.to_string())?;
    agent_sync::sync(
        &store,
        &cec_client,
        &cc_shared::domain::clock::SystemClock,
        Default::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    store
        .link_account("alice", "1002")
        .await
        .map_err(|e| e.to_string())?;
    let keys_pair = testkit::fake_idp::KeyPair::generate();
    let idp = testkit::fake_idp::FakeIdp::start(testkit::fake_idp::JwtExpectation {
        key: testkit::fake_idp::decoding_key(&keys_pair),
        exp_millis: false,
    })
    .await;
    let apps = TenantApps {
        idp_url: &idp.url,
        private_key: &keys_pair.private_pem,
        cec: &cec_client,
        cec_url: &cec.base_url,
    };
    let tenant_phone_pks = seed_tenant(&store, &keys, &apps).await?;

    Ok(Seed {
        proxy,
        client,
        table,
        numbers,
        uid_list,
        phone_pks,
        tenant_phone_pks,
        cec,
        idp,
        keys_pair,
    })
}

/// Where the tenant's own AICCS app and CEC are (the same fakes as the default tenant's).
struct TenantApps<'a> {
    idp_url: &'a str,
    private_key: &'a str,
    cec: &'a agent_sync::cec_client::CecClient,
    cec_url: &'a str,
}

/// Registers the tenant `TENANT` (keys wrapped under the benchmark's keyring, a credential for
/// each function, its own AICCS app and CEC in its settings, sealed as `tenants set` seals
/// them), maps `keys` for it, as the handler would, enrols the first one's PIN 2468 under its
/// own keys, syncs its directory and links `alice` in it; its number items' keys.
async fn seed_tenant(
    store: &DynamoStore,
    keys: &[cc_shared::domain::phone::PhoneKey],
    apps: &TenantApps<'_>,
) -> Result<Vec<String>, String> {
    use cc_shared::domain::tenant::{password_digest, Tenant, TenantCredential, TenantKeys};
    use cc_shared::store::TenantRegistry;

    let id = cc_shared::domain::tenant::TenantId::parse(TENANT).map_err(|e| e.to_string())?;
    let stack = crate::scenarios::keys()?;
    let tenant_keys = TenantKeys::generate().map_err(|e| e.to_string())?;
    let tenant = Tenant::new(id.clone(), "bench".into(), 0, &tenant_keys, &stack)
        .map_err(|e| e.to_string())?;
    store.add_tenant(&tenant).await.map_err(|e| e.to_string())?;
    for function in crate::scenarios::functions() {
        let credential = TenantCredential {
            user: TENANT_USER.into(),
            function: function.into(),
            digest: password_digest(TENANT_PASSWORD),
            created_at: 0,
        };
        store
            .add_credential(&id, &credential)
            .await
            .map_err(|e| e.to_string())?;
    }
    let protection = tenant_keys.protection().map_err(|e| e.to_string())?;
    let indexes: Vec<_> = keys.iter().map(|k| protection.index(k)).collect();
    let by_index: std::collections::HashMap<_, _> =
        indexes.iter().cloned().zip(keys.iter().cloned()).collect();
    let seal: cc_shared::store::Sealer = std::sync::Arc::new(move |index, uid| {
        let phone = by_index
            .get(index)
            .ok_or_else(|| cc_shared::store::StoreError::Failed("unknown index".into()))?;
        protection
            .seal(uid, phone)
            .map_err(|e| cc_shared::store::StoreError::Failed(e.to_string()))
    });
    let scoped = store.for_tenant(&id);
    scoped
        .create_uids(&indexes, &seal)
        .await
        .map_err(|e| e.to_string())?;
    let lookup = tenant_keys.lookup().map_err(|e| e.to_string())?;
    cc_shared::store::IdentityStore::put_pins(
        &scoped,
        &[(
            indexes[0].clone(),
            lookup.pepper.pin_digest(&keys[0], "2468"),
        )],
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut settings = cc_shared::domain::tenant_settings::TenantSettings::default();
    for (name, value) in [
        ("FUYUN_TOKEN_URL", apps.idp_url),
        ("FUYUN_CLIENT_ID", testkit::fake_idp::CLIENT_ID),
        ("FUYUN_CLIENT_SECRET", testkit::fake_idp::CLIENT_SECRET),
        ("FUYUN_SCOPE", testkit::fake_idp::SCOPE),
        ("FUYUN_REDIRECT_URL", testkit::fake_idp::REDIRECT_URL),
        ("FUYUN_ISSUER", testkit::fake_idp::ISSUER),
        ("FUYUN_PRIVATE_KEY", apps.private_key),
        ("CEC_BASE_URL", apps.cec_url),
        ("CEC_AGENT_INFO_PATH", testkit::fake_cec::AGENTS_PATH),
        ("CEC_APP_KEY", testkit::fake_cec::APP_KEY),
        ("CEC_APP_SECRET", testkit::fake_cec::APP_SECRET),
    ] {
        settings
            .set(name, Some(value.into()))
            .map_err(|e| e.to_string())?;
    }
    let sealed = settings
        .seal(&lookup.settings, &id, 1)
        .map_err(|e| e.to_string())?;
    store
        .set_settings(&id, 0, &sealed)
        .await
        .map_err(|e| e.to_string())?;
    agent_sync::sync(
        &scoped,
        apps.cec,
        &cc_shared::domain::clock::SystemClock,
        Default::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    cc_shared::store::AgentStore::link_account(&scoped, "alice", "1002")
        .await
        .map_err(|e| e.to_string())?;
    let scope = cc_shared::store::tenant_scope(&id);
    Ok(indexes
        .iter()
        .map(|k| format!("{scope}NUM#{}", k.as_str()))
        .collect())
}
