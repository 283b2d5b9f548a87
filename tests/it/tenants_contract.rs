//! The tenant registry's contract (platform mode), on both backends.

use crate::support;

use std::sync::Arc;

use cc_shared::domain::tenant::{
    password_digest, Tenant, TenantCredential, TenantId, TenantKeys, WrappedKeys, WrappedLookup,
};
use cc_shared::store::{CredentialAdded, KeyUse, MAX_TENANT_CREDENTIALS};
use support::Store;

/// What layouts 5 and 6 add as tables: dropped to make a file of an earlier layout.
/// Dropping what layouts 5 to 7 added: the file as layout 4 or earlier left it.
const LAYOUT_5_TABLES: &str = "DROP TABLE tenant_account_links; DROP TABLE tenant_agent_sync; \
     DROP TABLE agent_sync_cursor; DROP TABLE unmaskings; DROP TABLE unmask_budget; \
     ALTER TABLE pins DROP COLUMN d_id_last6; ALTER TABLE pins DROP COLUMN d_birth_date; \
     ALTER TABLE pins DROP COLUMN d_card_last4; ALTER TABLE verification_records DROP COLUMN factor;";

fn id(s: &str) -> TenantId {
    TenantId::parse(s).unwrap()
}

fn tenant(s: &str) -> Tenant {
    let stack = support::keys();
    let keys = TenantKeys::generate().unwrap();
    Tenant::new(id(s), format!("{s} Ltd."), 1_700_000_000, &keys, &stack).unwrap()
}

fn credential(user: &str, function: &str) -> TenantCredential {
    TenantCredential {
        user: user.into(),
        function: function.into(),
        digest: password_digest(&format!("{user}-{function}-password")),
        created_at: 1_700_000_100,
    }
}

contract!(tenants_are_added_once_and_listed, |store: Arc<
    dyn Store,
>| async move {
    assert!(store.list_tenants().await.unwrap().is_empty());
    assert_eq!(store.tenant(&id("acme")).await.unwrap(), None);
    let acme = tenant("acme");
    assert!(store.add_tenant(&acme).await.unwrap());
    // The ID is taken: nothing is overwritten (its keys above all).
    assert!(!store.add_tenant(&tenant("acme")).await.unwrap());
    assert!(store.add_tenant(&tenant("globex")).await.unwrap());
    let entry = store.tenant(&id("acme")).await.unwrap().unwrap();
    assert_eq!(entry.tenant, acme);
    assert!(entry.credentials.is_empty());
    let listed: Vec<String> = store
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.tenant.id.to_string())
        .collect();
    assert_eq!(listed, ["acme", "globex"]);
});

// A tenant's keys are wrapped under the stack's keyring, its lookup keys under the stack's
// index key: a store holding one must never be given a generated keyring or index key (the
// tenant's numbers and PINs would be lost with its keys). The pepper protects none of it.
contract!(
    a_registered_tenant_counts_as_held_under_the_keyring_and_index_key,
    |store: Arc<dyn Store>| async move {
        assert!(!store.holds_keyed(KeyUse::Keyring).await.unwrap());
        assert!(!store.holds_keyed(KeyUse::IndexKey).await.unwrap());
        store.add_tenant(&tenant("acme")).await.unwrap();
        assert!(store.holds_keyed(KeyUse::Keyring).await.unwrap());
        assert!(store.holds_keyed(KeyUse::IndexKey).await.unwrap());
        assert!(!store.holds_keyed(KeyUse::Pepper).await.unwrap());
    }
);

contract!(suspension_and_rewrapping_are_per_tenant, |store: Arc<
    dyn Store,
>| async move {
    let acme = tenant("acme");
    store.add_tenant(&acme).await.unwrap();
    store.add_tenant(&tenant("globex")).await.unwrap();
    assert!(store.set_suspended(&id("acme"), true).await.unwrap());
    assert!(!store.set_suspended(&id("nobody"), true).await.unwrap());
    let get = |s: &'static str| {
        let store = store.clone();
        async move { store.tenant(&id(s)).await.unwrap().unwrap().tenant }
    };
    assert!(get("acme").await.suspended);
    assert!(!get("globex").await.suspended);
    assert!(store.set_suspended(&id("acme"), false).await.unwrap());
    assert!(!get("acme").await.suspended);

    let renewed = tenant("acme");
    let (new, lookup) = (renewed.keys, renewed.lookup);
    let rewrap = |old: WrappedKeys, with: WrappedKeys, lookup: WrappedLookup| {
        let store = store.clone();
        async move {
            let done = store
                .rewrap_keys(&id("acme"), &old, &with, &lookup)
                .await
                .unwrap();
            let now = store.tenant(&id("acme")).await.unwrap().unwrap().tenant;
            (done, now.keys, now.lookup)
        }
    };
    let after = (true, new.clone(), lookup.clone());
    assert_eq!(
        rewrap(acme.keys.clone(), new.clone(), lookup.clone()).await,
        after
    );
    // Only where the keys are still the old ones: a concurrent rotation wins.
    let lost = rewrap(acme.keys.clone(), acme.keys.clone(), acme.lookup.clone()).await;
    assert_eq!(lost, (false, new.clone(), lookup.clone()));
    assert!(!store
        .rewrap_keys(&id("nobody"), &new, &new, &lookup)
        .await
        .unwrap());
});

contract!(settings_change_only_from_the_revision_read, |store: Arc<
    dyn Store,
>| async move {
    use cc_shared::domain::tenant_settings::StoredSettings;
    store.add_tenant(&tenant("acme")).await.unwrap();
    store.add_tenant(&tenant("globex")).await.unwrap();
    let fresh = store.tenant(&id("acme")).await.unwrap().unwrap().settings;
    assert_eq!(fresh, StoredSettings::default());
    let at = |rev: u64, scope: &str| StoredSettings {
        rev,
        values: [("FUYUN_SCOPE".to_string(), scope.to_string())].into(),
    };
    assert!(store
        .set_settings(&id("acme"), 0, &at(1, "a"))
        .await
        .unwrap());
    // A second writer that read revision 0 loses: nothing of it is written.
    assert!(!store
        .set_settings(&id("acme"), 0, &at(1, "b"))
        .await
        .unwrap());
    assert!(store
        .set_settings(&id("acme"), 1, &at(2, "c"))
        .await
        .unwrap());
    assert_eq!(
        store.tenant(&id("acme")).await.unwrap().unwrap().settings,
        at(2, "c")
    );
    assert_eq!(
        store.tenant(&id("globex")).await.unwrap().unwrap().settings,
        StoredSettings::default()
    );
    assert!(!store
        .set_settings(&id("nobody"), 0, &at(1, "a"))
        .await
        .unwrap());
    let listed = store.list_tenants().await.unwrap();
    assert_eq!(listed[0].settings, at(2, "c"));
});

contract!(
    credentials_belong_to_one_tenant_and_function,
    |store: Arc<dyn Store>| async move {
        let add = |t: &'static str, c: TenantCredential| {
            let store = store.clone();
            async move { store.add_credential(&id(t), &c).await.unwrap() }
        };
        assert_eq!(
            add("acme", credential("tencent", "number-mapping")).await,
            CredentialAdded::NoTenant
        );
        store.add_tenant(&tenant("acme")).await.unwrap();
        store.add_tenant(&tenant("globex")).await.unwrap();
        for (t, user, function) in [
            ("acme", "tencent", "number-mapping"),
            ("acme", "tencent-2", "number-mapping"),
            ("acme", "tencent", "identity-verification"),
            ("globex", "tencent", "number-mapping"),
        ] {
            assert_eq!(
                add(t, credential(user, function)).await,
                CredentialAdded::Added
            );
        }
        assert_eq!(
            add("acme", credential("tencent", "number-mapping")).await,
            CredentialAdded::Taken
        );
        let held = |t: &'static str| {
            let store = store.clone();
            async move {
                store
                    .tenant(&id(t))
                    .await
                    .unwrap()
                    .unwrap()
                    .credentials
                    .into_iter()
                    .map(|c| format!("{}/{}", c.function, c.user))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            held("acme").await,
            [
                "identity-verification/tencent",
                "number-mapping/tencent",
                "number-mapping/tencent-2"
            ]
        );
        let entry = store.tenant(&id("acme")).await.unwrap().unwrap();
        assert_eq!(
            entry.credentials[1],
            credential("tencent", "number-mapping")
        );
        // The list carries each tenant's credentials as the single read does.
        let listed = store.list_tenants().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0], entry);
        assert_eq!(listed[1].credentials.len(), 1);

        // Revoking a caller removes it from every function of its tenant only.
        assert_eq!(
            store
                .revoke_credentials(&id("acme"), "tencent")
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .revoke_credentials(&id("acme"), "tencent")
                .await
                .unwrap(),
            0
        );
        assert_eq!(held("acme").await, ["number-mapping/tencent-2"]);
        assert_eq!(held("globex").await, ["number-mapping/tencent"]);
        assert_eq!(
            store.revoke_credentials(&id("nobody"), "x").await.unwrap(),
            0
        );
    }
);

contract!(
    a_tenant_holds_a_bounded_number_of_credentials,
    |store: Arc<dyn Store>| async move {
        store.add_tenant(&tenant("acme")).await.unwrap();
        for i in 0..MAX_TENANT_CREDENTIALS {
            let c = credential(&format!("caller-{i}"), "number-mapping");
            assert_eq!(
                store.add_credential(&id("acme"), &c).await.unwrap(),
                CredentialAdded::Added
            );
        }
        let one_more = credential("caller-x", "number-mapping");
        assert_eq!(
            store.add_credential(&id("acme"), &one_more).await.unwrap(),
            CredentialAdded::Full
        );
        let entry = store.tenant(&id("acme")).await.unwrap().unwrap();
        assert_eq!(entry.credentials.len(), MAX_TENANT_CREDENTIALS);
    }
);

/// A store of the release before platform mode (layout 2) opens as it is: the registry's
/// tables are added, every mapping stays.
#[tokio::test]
async fn a_layout_2_store_gains_the_registry_and_keeps_its_mappings() {
    use cc_shared::store::embedded::EmbeddedStore;
    use cc_shared::store::{MappingStore, TenantListing, TenantRegistry};

    let dir = tempfile::tempdir().unwrap();
    let (numbers, seal) = support::sealer(&["13988888888", "95588"]);
    let created = {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.create_uids(&numbers, &seal).await.unwrap()
    };
    {
        // What the previous release left: layout 2, without the registry's tables.
        let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
        db.execute_batch(&format!(
            "DROP TABLE tenant_credentials; DROP TABLE tenants; {LAYOUT_5_TABLES}"
        ))
        .unwrap();
        db.pragma_update(None, "user_version", 2).unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(store.uids_of(&numbers).await.unwrap(), created);
    assert!(store.list_tenants().await.unwrap().is_empty());
    assert!(store.add_tenant(&tenant("acme")).await.unwrap());
    let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
    let version: i64 = db
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, cc_shared::store::embedded::LAYOUT_VERSION as i64);
}

/// A file of the release before identity verification served tenants (layout 3: tenants
/// without lookup keys) opens as it is, its tenants kept, without lookup keys.
#[tokio::test]
async fn embedded_layout_3_gains_the_lookup_and_settings_columns_on_opening() {
    use cc_shared::store::embedded::EmbeddedStore;
    use cc_shared::store::{TenantLookup, TenantRegistry};

    let dir = tempfile::tempdir().unwrap();
    let before = tenant("acme");
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(store.add_tenant(&before).await.unwrap());
    }
    {
        let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
        db.execute_batch(&format!(
            "ALTER TABLE tenants DROP COLUMN lookup; ALTER TABLE tenants DROP COLUMN settings; \
             ALTER TABLE tenants DROP COLUMN settings_rev; {LAYOUT_5_TABLES}"
        ))
        .unwrap();
        db.pragma_update(None, "user_version", 3).unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let acme = store.tenant(&id("acme")).await.unwrap().unwrap().tenant;
    assert_eq!(acme.keys, before.keys);
    assert!(acme.lookup.as_str().is_empty());
    assert!(store.add_tenant(&tenant("globex")).await.unwrap());
    let globex = store.tenant(&id("globex")).await.unwrap().unwrap().tenant;
    assert!(!globex.lookup.as_str().is_empty());
}

/// What the frame learns from the registry is cached: a warm request of a known tenant reads
/// nothing, and a flood of wrong passwords (or of an unknown tenant) reads the registry once
/// per cache time, not once per attempt. Counted as DynamoDB round trips.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_is_read_once_per_cache_time() {
    use cc_shared::domain::tenant::TenantUser;
    use cc_shared::store::TenantRegistry;
    use cc_shared::web::tenancy::{StackKeys, Tenancy};

    let (store, counter) = support::dynamo_store().await;
    store.add_tenant(&tenant("acme")).await.unwrap();
    let password = "a-password-of-the-tenant-acme-00";
    let c = TenantCredential {
        digest: password_digest(password),
        ..credential("tencent", "number-mapping")
    };
    store.add_credential(&id("acme"), &c).await.unwrap();
    let stack = support::keys();
    let stack = &StackKeys::Keyring(stack.keyring.clone());
    let user = |s: &str| TenantUser::parse(s).unwrap();

    let cached = Tenancy::new(
        "number-mapping",
        store.clone(),
        std::time::Duration::from_secs(60),
    );
    counter.reset();
    let caller = cached
        .authenticate(&user("tencent@acme"), password, stack)
        .await
        .unwrap()
        .expect("the right password authenticates");
    assert_eq!(caller.id, id("acme"));
    assert_eq!(counter.get(), 1);
    for _ in 0..20 {
        let refused = cached
            .authenticate(&user("tencent@acme"), "guess", stack)
            .await;
        assert!(refused.unwrap().is_none());
    }
    assert!(cached
        .authenticate(&user("tencent@acme"), password, stack)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        counter.get(),
        1,
        "a wrong password or a warm request read the store"
    );
    for _ in 0..5 {
        let unknown = cached
            .authenticate(&user("x@nobody"), password, stack)
            .await;
        assert!(unknown.unwrap().is_none());
    }
    assert_eq!(counter.get(), 2, "an unknown tenant is cached too");
    // Another function's credential does not authenticate here.
    let other = Tenancy::new(
        "identity-verification",
        store.clone(),
        std::time::Duration::from_secs(60),
    );
    let refused = other
        .authenticate(&user("tencent@acme"), password, stack)
        .await;
    assert!(refused.unwrap().is_none());

    // Within the cache time a revocation is not seen yet (the documented bound); with no
    // cache, at once.
    store
        .revoke_credentials(&id("acme"), "tencent")
        .await
        .unwrap();
    assert!(cached
        .authenticate(&user("tencent@acme"), password, stack)
        .await
        .unwrap()
        .is_some());
    let uncached = Tenancy::new("number-mapping", store.clone(), std::time::Duration::ZERO);
    let refused = uncached
        .authenticate(&user("tencent@acme"), password, stack)
        .await;
    assert!(refused.unwrap().is_none());
}
