//! `cc-callbacks numbers migrate` on DynamoDB: converts the items an earlier release wrote
//! with numbers in the clear (`PHONE#<number>`, `UID#<id>` with `phone`, `PIN#<number>`) to
//! the protected layout. Each mapping and each PIN is converted in one transaction that also
//! deletes its plaintext items, so the command can stop anywhere and be run again: it finds
//! only what is left. The only code that reads a stored number in the clear.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem};

use super::admin::{decode_start, encode_start};
use super::identity::pin_key;

use super::{classify, delete_action, failed, number_attr, string_attr, DynamoStore, PK, SK};
use crate::domain::phone::PhoneKey;
use crate::domain::protect::NumberProtection;
use crate::domain::uid::Uid;
use crate::store::{MigrateReport, StoreError, StoredMapping};

const LEGACY_PHONE: &str = "PHONE#";
pub(super) const LEGACY_PIN: &str = "PIN#";
const LEGACY_UID: &str = "UID#";

/// Which of a mapping's two plaintext items a conversion starts from.
#[derive(Clone, Copy)]
enum Side {
    Phone,
    Uid,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

impl DynamoStore {
    /// Converts every plaintext item, `on_item` called after each converted item.
    pub async fn migrate_legacy(
        &self,
        protection: &NumberProtection,
        on_item: &(dyn Fn() + Sync),
    ) -> Result<MigrateReport, StoreError> {
        let mut report = MigrateReport::default();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression(
                    "begins_with(#pk, :phone) OR begins_with(#pk, :pin) \
                     OR (begins_with(#pk, :uid) AND attribute_exists(phone))",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":phone", s(LEGACY_PHONE))
                .expression_attribute_values(":pin", s(LEGACY_PIN))
                .expression_attribute_values(":uid", s(LEGACY_UID))
                .set_exclusive_start_key(decode_start(start.take())?)
                .send()
                .await
                .map_err(classify)?;
            for item in out.items.unwrap_or_default() {
                let Some(pk) = string_attr(&item, PK) else {
                    continue;
                };
                let created_at = number_attr(&item, "created_at").unwrap_or(0);
                if let Some(number) = pk.strip_prefix(LEGACY_PHONE) {
                    let Some(uid) = string_attr(&item, "uid").and_then(|u| Uid::parse(&u)) else {
                        continue;
                    };
                    let phone = PhoneKey::from_stored(number.to_string());
                    let m = (&phone, &uid, created_at);
                    self.convert_mapping(protection, m, Side::Phone, &mut report)
                        .await?;
                } else if let Some(number) = pk.strip_prefix(LEGACY_PIN) {
                    let phone = PhoneKey::from_stored(number.to_string());
                    self.convert_pin(protection, &phone, item.clone()).await?;
                    report.pins += 1;
                } else if let (Some(id), Some(number)) =
                    (pk.strip_prefix(LEGACY_UID), string_attr(&item, "phone"))
                {
                    let Some(uid) = Uid::parse(id) else { continue };
                    let phone = PhoneKey::from_stored(number);
                    let m = (&phone, &uid, created_at);
                    self.convert_mapping(protection, m, Side::Uid, &mut report)
                        .await?;
                }
                on_item();
            }
            match encode_start(out.last_evaluated_key) {
                Some(next) => start = Some(next),
                None => return Ok(report),
            }
        }
    }

    /// One mapping, from whichever of its two plaintext items the scan met first (`from`):
    /// converted only while that item is still there in the clear, so that meeting the
    /// other one later (the scan read it before the conversion) does nothing.
    async fn convert_mapping(
        &self,
        p: &NumberProtection,
        (phone, uid, created_at): (&PhoneKey, &Uid, i64),
        from: Side,
        report: &mut MigrateReport,
    ) -> Result<(), StoreError> {
        let index = p.index(phone);
        let mapping = StoredMapping {
            index: index.clone(),
            uid: uid.clone(),
            sealed: p.seal(uid, phone).map_err(failed)?,
            created_at,
        };
        let (number_item, uid_item) = self.mapping_items(&mapping);
        let phone_key = key(format!("{LEGACY_PHONE}{}", phone.as_str()), "MAP");
        // The number's item: new, or this very mapping already.
        let number_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(number_item))
            .condition_expression("attribute_not_exists(#pk) OR #uid = :u")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#uid", "uid")
            .expression_attribute_values(":u", s(uid.as_str()))
            .build()
            .map_err(failed)?;
        let uid_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(uid_item));
        let uid_put = match from {
            Side::Uid => uid_put.condition_expression("attribute_exists(phone)"),
            Side::Phone => uid_put
                .condition_expression("attribute_not_exists(nix) OR nix = :i")
                .expression_attribute_values(":i", s(index.as_str())),
        };
        let phone_delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(phone_key.clone()));
        let phone_delete = match from {
            Side::Phone => phone_delete
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Side::Uid => phone_delete,
        };
        let actions = vec![
            TransactWriteItem::builder().put(number_put).build(),
            TransactWriteItem::builder()
                .put(uid_put.build().map_err(failed)?)
                .build(),
            TransactWriteItem::builder()
                .delete(phone_delete.build().map_err(failed)?)
                .build(),
        ];
        let Some(reasons) = self.transact(actions).await? else {
            report.mappings += 1;
            return Ok(());
        };
        let failed_checks: Vec<bool> = reasons
            .iter()
            .map(|r| r.code() == Some("ConditionalCheckFailed"))
            .collect();
        let source = match from {
            Side::Phone => 2,
            Side::Uid => 1,
        };
        if failed_checks.get(source) == Some(&true) {
            // Converted already, from its other item.
            return Ok(());
        }
        if failed_checks.first() != Some(&true) {
            return Err(StoreError::Unavailable(
                "a conversion transaction was cancelled; run the migration again".into(),
            ));
        }
        // The number has another ID by now (created by this release): that one stands;
        // drop what is left of the plaintext mapping.
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(phone_key))
            .send()
            .await
            .map_err(classify)?;
        self.scrub_legacy_uid(uid).await?;
        report.superseded += 1;
        Ok(())
    }

    /// Removes `uid`'s item if it still holds a plaintext `phone` (never a converted one).
    async fn scrub_legacy_uid(&self, uid: &Uid) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(self.uid_pk(uid), "MAP")))
            .condition_expression("attribute_exists(phone)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if ctx.err().is_conditional_check_failed_exception() =>
            {
                Ok(())
            }
            Err(e) => Err(classify(e)),
        }
    }

    async fn convert_pin(
        &self,
        p: &NumberProtection,
        phone: &PhoneKey,
        mut item: HashMap<String, AttributeValue>,
    ) -> Result<(), StoreError> {
        let index = p.index(phone);
        let old_key = key(format!("{LEGACY_PIN}{}", phone.as_str()), "PIN");
        item.extend(pin_key("", &index));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .build()
            .map_err(failed)?;
        let actions = vec![
            TransactWriteItem::builder().put(put).build(),
            delete_action(&self.table, old_key.clone())?,
        ];
        let Some(reasons) = self.transact(actions).await? else {
            return Ok(());
        };
        if !reasons
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed"))
        {
            return Err(StoreError::Unavailable(
                "a conversion transaction was cancelled; run the migration again".into(),
            ));
        }
        // Enrolled again under this release meanwhile: the new enrolment stands.
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(old_key))
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}
