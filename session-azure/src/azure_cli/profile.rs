//! Editing `azureProfile.json`: the session's subscription, and which
//! subscription is the default.

use serde_json::{Map, Value, json};
use session_core::Result;

use super::Publication;
use super::files::{JsonFile, unreadable};
use crate::AzureCliPublished;

pub(super) fn same_id(entry: &Value, id: &str) -> bool {
    entry
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case(id))
}

pub(super) fn is_default(entry: &Value) -> bool {
    entry.get("isDefault").and_then(Value::as_bool) == Some(true)
}

pub(super) fn set_default(entry: &mut Value, default: bool) {
    if let Value::Object(map) = entry {
        map.insert("isDefault".into(), Value::Bool(default));
    }
}

/// Adds or updates the subscription; returns the entry that was there
/// before and the previous default (from `previous` on a re-publish).
pub(super) fn publish_profile(
    profile: &mut JsonFile,
    p: &Publication,
    subscription_id: &str,
    previous: Option<&AzureCliPublished>,
) -> Result<(Option<Value>, Option<String>)> {
    let tenant = p.tenant();
    let cloud = p.config.azure_cli_cloud_name()?;
    if !profile.root.contains_key("installationId") {
        profile.root.insert(
            "installationId".into(),
            Value::String(uuid::Uuid::new_v4().to_string()),
        );
    }
    let subs = profile.array("subscriptions")?;
    let index = subs.iter().position(|e| same_id(e, subscription_id));
    let (previous_entry, previous_default) = match previous {
        Some(rec) => (rec.previous_entry.clone(), rec.previous_default.clone()),
        None => (
            index.map(|i| subs[i].clone()),
            subs.iter()
                .find(|e| is_default(e) && !same_id(e, subscription_id))
                .and_then(|e| e.get("id").and_then(Value::as_str))
                .map(str::to_owned),
        ),
    };
    let mut entry = match index {
        Some(i) => subs.remove(i),
        None => Value::Object(Map::new()),
    };
    let was_default = is_default(&entry);
    let Value::Object(map) = &mut entry else {
        return Err(unreadable(&profile.path, "a subscription is not an object"));
    };
    for (key, value) in [
        ("id", json!(subscription_id)),
        ("name", json!(p.subscription_name)),
        ("state", json!("Enabled")),
        ("user", json!({"name": p.account.username, "type": "user"})),
        ("tenantId", json!(tenant)),
        ("environmentName", json!(cloud)),
        ("homeTenantId", json!(tenant)),
    ] {
        map.insert(key.into(), value);
    }
    map.entry("managedByTenants").or_insert_with(|| json!([]));
    let subs = profile.array("subscriptions")?;
    let default = p.make_default || was_default || !subs.iter().any(is_default);
    if default {
        subs.iter_mut().for_each(|e| set_default(e, false));
    }
    set_default(&mut entry, default);
    match index {
        Some(i) => subs.insert(i, entry),
        None => subs.push(entry),
    }
    Ok((previous_entry, previous_default))
}

/// Removes (or restores) the subscription; the default moves back to the
/// previous one when the removed entry was the default.
pub(super) fn withdraw_profile(profile: &mut JsonFile, record: &AzureCliPublished) -> Result<()> {
    let subs = profile.array("subscriptions")?;
    let Some(index) = subs
        .iter()
        .position(|e| same_id(e, &record.subscription_id))
    else {
        return Ok(());
    };
    let removed = subs.remove(index);
    let restored = record.previous_entry.clone().map(|mut old| {
        let was_default = is_default(&old);
        set_default(&mut old, false);
        subs.insert(index, old);
        was_default
    });
    if is_default(&removed) && !subs.iter().any(is_default) {
        let pick = record
            .previous_default
            .as_deref()
            .and_then(|id| subs.iter().position(|e| same_id(e, id)))
            .or(match restored {
                Some(true) => Some(index),
                _ => None,
            })
            .or(if subs.is_empty() { None } else { Some(0) });
        if let Some(i) = pick {
            set_default(&mut subs[i], true);
        }
    }
    Ok(())
}
