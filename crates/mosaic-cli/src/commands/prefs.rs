//! `mosaic prefs`: your typed preferences.

use anyhow::Result;
use clap::Subcommand;
use mosaic_api::{Preference, SetPreferenceRequest, PREFERENCES};

use crate::commands::Ctx;
use crate::output::{json, table};

#[derive(Debug, Subcommand)]
pub enum PrefsCommand {
    /// List the preferences you have set.
    List,
    /// Show the preferences that exist and their types.
    Keys,
    /// Show one preference.
    Get { key: String },
    /// Set a preference. VALUE is JSON (true, 20, "x") or, failing that, text.
    Set { key: String, value: String },
    /// Unset a preference.
    Unset { key: String },
}

fn show_pref(ctx: &Ctx, p: &Preference) -> Result<()> {
    if ctx.json {
        return json(p);
    }
    println!("{} = {}", p.key, p.value);
    Ok(())
}

pub async fn prefs(ctx: &Ctx, cmd: PrefsCommand) -> Result<()> {
    if let PrefsCommand::Keys = cmd {
        if ctx.json {
            let keys: Vec<serde_json::Value> = PREFERENCES
                .iter()
                .map(|p| {
                    serde_json::json!({"key": p.key, "type": p.value_type.describe(), "description": p.description})
                })
                .collect();
            return json(&keys);
        }
        let rows: Vec<Vec<String>> = PREFERENCES
            .iter()
            .map(|p| vec![p.key.into(), p.value_type.describe(), p.description.into()])
            .collect();
        table(&["KEY", "VALUES", "DESCRIPTION"], &rows);
        return Ok(());
    }
    let client = ctx.client()?;
    match cmd {
        PrefsCommand::Keys => Ok(()),
        PrefsCommand::List => {
            let list = client.list_preferences().await?;
            if ctx.json {
                return json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|p| vec![p.key.clone(), p.value.to_string(), p.updated_at.clone()])
                .collect();
            table(&["KEY", "VALUE", "UPDATED"], &rows);
            Ok(())
        }
        PrefsCommand::Get { key } => show_pref(ctx, &client.get_preference(&key).await?),
        PrefsCommand::Set { key, value } => {
            // JSON when it parses (true, 20, "quoted"), plain text otherwise.
            let value = serde_json::from_str(&value).unwrap_or(serde_json::Value::String(value));
            show_pref(
                ctx,
                &client
                    .set_preference(&key, &SetPreferenceRequest { value })
                    .await?,
            )
        }
        PrefsCommand::Unset { key } => {
            client.delete_preference(&key).await?;
            eprintln!("unset {key}");
            Ok(())
        }
    }
}
