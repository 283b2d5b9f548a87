//! `cc-callbacks tenants set|show`: a platform tenant's own vendor settings (part of the
//! `tenants` group, kept apart for its size). Values are checked by the functions' own
//! `config.rs` code before anything is written; secrets are read from a file or standard
//! input only, sealed under the tenant's keys, and never printed.

use std::io::Read;

use cc_shared::domain::tenant_settings::{setting, TenantSettings, MAX_VALUE_BYTES, SETTINGS};
use cc_shared::web::tenancy::CACHE_VAR;

use super::output::rfc3339;
use super::tenants::tenant_id;
use super::CliResult;
use crate::stores::Stores;

/// One `NAME=...` argument, read.
struct Change {
    name: &'static str,
    /// None: unset.
    value: Option<String>,
}

/// Reads a value given as `@FILE` or `-` (at most once), bounded.
fn read_source(name: &str, source: &str, stdin_used: &mut bool) -> Result<String, String> {
    let mut text = String::new();
    let limit = (MAX_VALUE_BYTES + 1) as u64;
    if source == "-" {
        if std::mem::replace(stdin_used, true) {
            return Err("only one setting can be read from standard input (-)".into());
        }
        std::io::stdin()
            .take(limit)
            .read_to_string(&mut text)
            .map_err(|e| format!("{name}: cannot read standard input: {e}"))?;
    } else {
        let path = &source[1..];
        std::fs::File::open(path)
            .and_then(|f| f.take(limit).read_to_string(&mut text))
            .map_err(|e| format!("{name}: cannot read {path}: {e}"))?;
    }
    if text.len() > MAX_VALUE_BYTES {
        return Err(format!("{name}: the value is over {MAX_VALUE_BYTES} bytes"));
    }
    Ok(text)
}

fn parse_changes(args: &[String]) -> Result<Vec<Change>, String> {
    let mut stdin_used = false;
    let mut changes: Vec<Change> = Vec::new();
    for arg in args {
        let (name, raw) = arg
            .split_once('=')
            .ok_or_else(|| format!("{arg:?}: expected NAME=VALUE (NAME= unsets)"))?;
        let s = setting(name).ok_or_else(|| {
            let names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
            format!(
                "{name} is not a tenant setting; these are: {}",
                names.join(", ")
            )
        })?;
        if changes.iter().any(|c| c.name == s.name) {
            return Err(format!("{name} is given twice"));
        }
        let from_source = raw == "-" || raw.starts_with('@');
        let value = if raw.is_empty() {
            None
        } else if s.secret && !from_source {
            // Never echo the literal back: it is a secret.
            return Err(format!(
                "{name} is a secret: give it as {name}=@FILE or {name}=- (standard input), \
                 never on the command line, where it would stay in the shell's history and \
                 be visible to other users in `ps`"
            ));
        } else if s.secret {
            Some(read_source(name, raw, &mut stdin_used)?)
        } else {
            Some(raw.to_string())
        };
        changes.push(Change {
            name: s.name,
            value,
        });
    }
    Ok(changes)
}

/// `tenants set ID NAME=VALUE...`
pub async fn set(stores: &Stores, id: &str, args: &[String]) -> CliResult {
    let id = tenant_id(id)?;
    let changes = parse_changes(args)?;
    let (entry, keys) = stores.tenant_lookup(&id).await?;
    let mut settings: TenantSettings = entry
        .settings
        .open(&keys.settings, &id)
        .map_err(|e| format!("tenant {id}'s stored settings do not open ({e})"))?;
    for c in &changes {
        settings
            .set(c.name, c.value.clone())
            .map_err(|e| format!("{e}; nothing was changed"))?;
    }
    // Checked by the functions' own code, as they will read them.
    for check in [
        token_exchange::config::check_tenant,
        agent_sync::config::check_tenant,
        identity_verification::config::check_tenant,
    ] {
        check(&settings).map_err(|e| format!("tenant {id}: {e}; nothing was changed"))?;
    }
    let rev = entry.settings.rev + 1;
    let stored = settings.seal(&keys.settings, &id, rev)?;
    if !stores
        .tenants()
        .set_settings(&id, entry.settings.rev, &stored)
        .await?
    {
        return Err(format!(
            "tenant {id}'s settings changed meanwhile (or it was removed): nothing was \
             changed; run the command again"
        )
        .into());
    }
    let (set, unset): (Vec<&Change>, Vec<&Change>) =
        changes.iter().partition(|c| c.value.is_some());
    let names = |v: &[&Change]| v.iter().map(|c| c.name).collect::<Vec<_>>().join(", ");
    let mut done = Vec::new();
    if !set.is_empty() {
        done.push(format!("set {}", names(&set)));
    }
    if !unset.is_empty() {
        done.push(format!("unset {}", names(&unset)));
    }
    println!(
        "tenant {id}: {} (settings revision {rev}); running functions use them within \
         {CACHE_VAR} (default 60 s) ({})",
        done.join("; "),
        stores.describe()
    );
    Ok(())
}

/// `tenants show ID [--json]`
pub async fn show(stores: &Stores, id: &str, json: bool) -> CliResult {
    let id = tenant_id(id)?;
    let entry = stores
        .tenants()
        .tenant(&id)
        .await?
        .ok_or_else(|| format!("no tenant {id} ({})", stores.describe()))?;
    // Shown without opening anything: plain values as stored, secrets only as set or not.
    let shown: Vec<(&str, String)> = SETTINGS
        .iter()
        .map(|s| {
            let value = entry.settings.values.get(s.name);
            let text = match (s.secret, value) {
                (_, None) => "(unset)".to_string(),
                (true, Some(_)) => "(set)".to_string(),
                (false, Some(v)) => v.clone(),
            };
            (s.name, text)
        })
        .collect();
    let t = &entry.tenant;
    if json {
        let credentials: Vec<serde_json::Value> = entry
            .credentials
            .iter()
            .map(|c| serde_json::json!({"user": c.user, "function": c.function, "created": rfc3339(c.created_at)}))
            .collect();
        let settings: serde_json::Map<String, serde_json::Value> = shown
            .iter()
            .map(|(n, v)| (n.to_string(), serde_json::Value::String(v.clone())))
            .collect();
        let mut shown = super::tenants::tenant_json(t, serde_json::json!(credentials));
        shown["settings_revision"] = serde_json::json!(entry.settings.rev);
        shown["settings"] = serde_json::Value::Object(settings);
        println!("{shown}");
        return Ok(());
    }
    println!("tenant     {id}");
    println!("name       {}", t.name);
    println!("created    {}", rfc3339(t.created_at));
    println!("suspended  {}", if t.suspended { "yes" } else { "no" });
    println!("credentials");
    for c in &entry.credentials {
        println!(
            "  {}@{id}  {}  created {}",
            c.user,
            c.function,
            rfc3339(c.created_at)
        );
    }
    println!("settings (revision {})", entry.settings.rev);
    for (name, value) in &shown {
        println!("  {name:<34} {value}");
    }
    Ok(())
}
