//! The tenant registry: one item per tenant, `pk = "TENANTS"`, `sk = "<tenant ID>"`, holding
//! its name, suspension, wrapped keys and its callers' credential digests (a map by
//! `<function>#<user>`), so that resolving a tenant is one read and listing is one Query.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::admin::{decode_start, encode_start};
use super::identity::{PIN_PREFIX, RECORD_NUMBER_PREFIX};
use super::mapping::NUMBER_PREFIX;
use super::{classify, failed, number_attr, string_attr, DynamoStore, PK, SK};
use crate::domain::tenant::{Tenant, TenantCredential, TenantId, WrappedKeys, WrappedLookup};
use crate::domain::tenant_settings::StoredSettings;
use crate::store::{
    tenant_scope, CredentialAdded, Erased, StoreError, TenantEntry, TenantListing, TenantLookup,
    TenantRegistry, MAX_TENANT_CREDENTIALS,
};

/// Parts a tenant's erasure scans the table in at once, and items per page.
const ERASE_SEGMENTS: usize = 4;
const ERASE_PAGE: i32 = 500;

/// The registry's partition.
pub const REGISTRY_PK: &str = "TENANTS";
const CREDS: &str = "creds";
const SETTINGS: &str = "settings";
const SETTINGS_REV: &str = "settings_rev";

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(id: &TenantId) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_string(), s(REGISTRY_PK)),
        (SK.to_string(), s(id.as_str())),
    ])
}

fn credential_key(function: &str, user: &str) -> String {
    format!("{function}#{user}")
}

fn parse_tenant(item: &HashMap<String, AttributeValue>) -> Result<Tenant, StoreError> {
    let bad = || failed("a tenant registry item is malformed");
    let id = string_attr(item, SK).ok_or_else(bad)?;
    Ok(Tenant {
        id: TenantId::parse(&id).map_err(|_| bad())?,
        name: string_attr(item, "name").unwrap_or_default(),
        created_at: number_attr(item, "created_at").ok_or_else(bad)?,
        suspended: matches!(item.get("suspended"), Some(AttributeValue::Bool(true))),
        keys: WrappedKeys::from_stored(string_attr(item, "keys").ok_or_else(bad)?),
        lookup: WrappedLookup::from_stored(string_attr(item, "lookup").unwrap_or_default()),
    })
}

fn parse_credentials(
    item: &HashMap<String, AttributeValue>,
) -> Result<Vec<TenantCredential>, StoreError> {
    let Some(AttributeValue::M(creds)) = item.get(CREDS) else {
        return Ok(Vec::new());
    };
    let mut out = creds
        .values()
        .map(|v| {
            let AttributeValue::M(c) = v else {
                return Err(failed("a tenant credential is malformed"));
            };
            Ok(TenantCredential {
                user: string_attr(c, "user").ok_or_else(|| failed("credential without user"))?,
                function: string_attr(c, "function")
                    .ok_or_else(|| failed("credential without function"))?,
                digest: string_attr(c, "digest")
                    .ok_or_else(|| failed("credential without digest"))?,
                created_at: number_attr(c, "created_at").unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| (&a.function, &a.user).cmp(&(&b.function, &b.user)));
    Ok(out)
}

fn parse_settings(item: &HashMap<String, AttributeValue>) -> Result<StoredSettings, StoreError> {
    let mut settings = StoredSettings {
        rev: number_attr(item, SETTINGS_REV).unwrap_or(0).max(0) as u64,
        ..StoredSettings::default()
    };
    if let Some(AttributeValue::M(values)) = item.get(SETTINGS) {
        for (name, value) in values {
            let AttributeValue::S(value) = value else {
                return Err(failed("a tenant setting is malformed"));
            };
            settings.values.insert(name.clone(), value.clone());
        }
    }
    Ok(settings)
}

/// The registry item read as an entry.
fn parse_entry(item: &HashMap<String, AttributeValue>) -> Result<TenantEntry, StoreError> {
    Ok(TenantEntry {
        tenant: parse_tenant(item)?,
        credentials: parse_credentials(item)?,
        settings: parse_settings(item)?,
    })
}

fn condition_failed<R>(e: &SdkError<UpdateItemError, R>) -> bool {
    matches!(
        e,
        SdkError::ServiceError(ctx)
            if matches!(ctx.err(), UpdateItemError::ConditionalCheckFailedException(_))
    )
}

impl DynamoStore {
    /// An UpdateItem of the tenant's item under `condition`: Ok(false) when it failed.
    async fn update_tenant(
        &self,
        id: &TenantId,
        update: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool, StoreError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#pk", PK);
        for (name, value) in names {
            request = request.expression_attribute_names(*name, *value);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl TenantLookup for DynamoStore {
    /// A consistent BatchGetItem of the one item: the operation number mapping already links
    /// (a GetItem would add its SDK code to the binary).
    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantEntry>, StoreError> {
        let Some(item) = self.batch_get_items(vec![key(id)], None).await?.pop() else {
            return Ok(None);
        };
        Ok(Some(parse_entry(&item)?))
    }
}

#[async_trait]
impl TenantListing for DynamoStore {
    async fn list_tenants(&self) -> Result<Vec<TenantEntry>, StoreError> {
        let mut tenants = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(REGISTRY_PK))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items() {
                tenants.push(parse_entry(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(tenants);
            }
        }
    }
}

#[async_trait]
impl TenantRegistry for DynamoStore {
    async fn add_tenant(&self, t: &Tenant) -> Result<bool, StoreError> {
        let mut item = key(&t.id);
        item.insert("name".into(), s(t.name.clone()));
        item.insert("created_at".into(), n(t.created_at));
        item.insert("suspended".into(), AttributeValue::Bool(t.suspended));
        item.insert("keys".into(), s(t.keys.as_str()));
        if !t.lookup.as_str().is_empty() {
            item.insert("lookup".into(), s(t.lookup.as_str()));
        }
        item.insert(CREDS.into(), AttributeValue::M(HashMap::new()));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn set_suspended(&self, id: &TenantId, suspended: bool) -> Result<bool, StoreError> {
        self.update_tenant(
            id,
            "SET suspended = :s",
            "attribute_exists(#pk)",
            &[],
            vec![(":s", AttributeValue::Bool(suspended))],
        )
        .await
    }

    async fn add_credential(
        &self,
        id: &TenantId,
        c: &TenantCredential,
    ) -> Result<CredentialAdded, StoreError> {
        let value = AttributeValue::M(HashMap::from([
            ("user".to_string(), s(c.user.clone())),
            ("function".to_string(), s(c.function.clone())),
            ("digest".to_string(), s(c.digest.clone())),
            ("created_at".to_string(), n(c.created_at)),
        ]));
        let added = self
            .update_tenant(
                id,
                "SET #creds.#k = :c",
                "attribute_exists(#pk) AND attribute_not_exists(#creds.#k) \
                 AND size(#creds) < :max",
                &[
                    ("#creds", CREDS),
                    ("#k", &credential_key(&c.function, &c.user)),
                ],
                vec![(":c", value), (":max", n(MAX_TENANT_CREDENTIALS))],
            )
            .await?;
        if added {
            return Ok(CredentialAdded::Added);
        }
        // Refused: say why (an admin command's rare path, one more read).
        let Some(entry) = self.tenant(id).await? else {
            return Ok(CredentialAdded::NoTenant);
        };
        let taken = entry
            .credentials
            .iter()
            .any(|x| x.function == c.function && x.user == c.user);
        Ok(if taken {
            CredentialAdded::Taken
        } else {
            CredentialAdded::Full
        })
    }

    async fn revoke_credentials(&self, id: &TenantId, user: &str) -> Result<usize, StoreError> {
        let Some(entry) = self.tenant(id).await? else {
            return Ok(0);
        };
        let keys: Vec<String> = entry
            .credentials
            .iter()
            .filter(|c| c.user == user)
            .map(|c| credential_key(&c.function, &c.user))
            .collect();
        if keys.is_empty() {
            return Ok(0);
        }
        let names: Vec<(String, String)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (format!("#k{i}"), k.clone()))
            .collect();
        let update = format!(
            "REMOVE {}",
            names
                .iter()
                .map(|(n, _)| format!("#creds.{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut refs: Vec<(&str, &str)> = vec![("#creds", CREDS)];
        refs.extend(names.iter().map(|(n, k)| (n.as_str(), k.as_str())));
        self.update_tenant(id, &update, "attribute_exists(#pk)", &refs, vec![])
            .await?;
        Ok(keys.len())
    }

    async fn set_settings(
        &self,
        id: &TenantId,
        expected_rev: u64,
        settings: &StoredSettings,
    ) -> Result<bool, StoreError> {
        let values = settings
            .values
            .iter()
            .map(|(k, v)| (k.clone(), s(v.clone())))
            .collect();
        let condition = if expected_rev == 0 {
            "attribute_exists(#pk) AND (attribute_not_exists(#rev) OR #rev = :old)"
        } else {
            "attribute_exists(#pk) AND #rev = :old"
        };
        self.update_tenant(
            id,
            "SET #settings = :settings, #rev = :rev",
            condition,
            &[("#settings", SETTINGS), ("#rev", SETTINGS_REV)],
            vec![
                (":settings", AttributeValue::M(values)),
                (":rev", n(settings.rev)),
                (":old", n(expected_rev)),
            ],
        )
        .await
    }

    fn erase_segments(&self) -> usize {
        ERASE_SEGMENTS
    }

    async fn erase_page(
        &self,
        id: &TenantId,
        segment: usize,
        segments: usize,
        start: Option<String>,
    ) -> Result<(Erased, Option<String>), StoreError> {
        let scope = tenant_scope(id);
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(segments as i32)
            .limit(ERASE_PAGE)
            .consistent_read(true)
            .filter_expression("begins_with(#pk, :scope)")
            .projection_expression("#pk, #sk")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#sk", SK)
            .expression_attribute_values(":scope", s(scope.as_str()))
            .set_exclusive_start_key(decode_start(start)?)
            .send()
            .await
            .map_err(classify)?;
        let mut erased = Erased::default();
        let mut deletes = Vec::new();
        for item in out.items() {
            let (Some(pk), Some(sk)) = (string_attr(item, PK), string_attr(item, SK)) else {
                continue;
            };
            let kind = pk.strip_prefix(scope.as_str()).unwrap_or_default();
            if kind.starts_with(NUMBER_PREFIX) {
                erased.mappings += 1;
            } else if kind.starts_with(PIN_PREFIX) {
                erased.pins += 1;
            } else if kind.starts_with(RECORD_NUMBER_PREFIX) {
                erased.records += 1;
            } else {
                erased.other += 1;
            }
            let key = HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))]);
            let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(failed)?;
            deletes.push(
                aws_sdk_dynamodb::types::WriteRequest::builder()
                    .delete_request(delete)
                    .build(),
            );
        }
        self.batch_write(deletes).await?;
        Ok((erased, encode_start(out.last_evaluated_key)))
    }

    async fn remove_tenant(&self, id: &TenantId) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(classify)?;
        Ok(out.attributes.is_some())
    }

    async fn rewrap_keys(
        &self,
        id: &TenantId,
        old: &WrappedKeys,
        new: &WrappedKeys,
        lookup: &WrappedLookup,
    ) -> Result<bool, StoreError> {
        self.update_tenant(
            id,
            "SET #keys = :new, #lookup = :lookup",
            "attribute_exists(#pk) AND #keys = :old",
            &[("#keys", "keys"), ("#lookup", "lookup")],
            vec![
                (":new", s(new.as_str())),
                (":old", s(old.as_str())),
                (":lookup", s(lookup.as_str())),
            ],
        )
        .await
    }
}
