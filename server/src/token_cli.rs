//! `lms-admin token …`: API tokens from a terminal, with the checks and
//! audit of the console. The secret is printed once, alone on the last line
//! of `create`, so a script can take it with `tail -n 1`.

use chrono::{DateTime, Utc};
use lms_backup::jobs::messages::failure_message;
use lms_backup::tokens::{parse_scopes, NewToken, TokenInfo};
use lms_backup::Engine;

use crate::backup_cli::{cli_actor, printable};
use crate::cli::{CliResult, TokenCommand};

/// Runs one `token` subcommand.
pub async fn run(engine: &Engine, command: TokenCommand) -> CliResult {
    let actor = cli_actor();
    let fail = |e: lms_backup::Error| failure_message(&e);
    match command {
        TokenCommand::Create {
            name,
            scopes,
            expires_days,
        } => {
            let scopes = parse_scopes(&scopes).map_err(fail)?;
            let created = engine
                .create_token(
                    NewToken {
                        name,
                        scopes,
                        expires_days,
                    },
                    &actor,
                    Utc::now(),
                )
                .await
                .map_err(fail)?;
            let info = &created.info;
            eprintln!(
                "Created API token \"{}\" ({}), {}.",
                info.name,
                scope_names(info),
                match info.expires_at {
                    Some(at) => format!("valid until {}", utc(at)),
                    None => "valid until revoked".to_owned(),
                }
            );
            eprintln!("It is shown only now: store it as a secret of the pipeline that uses it.");
            eprintln!("Use it as the header  Authorization: Bearer <token>");
            println!("{}", created.secret);
            Ok(())
        }
        TokenCommand::List => {
            let tokens = engine.list_tokens().await.map_err(fail)?;
            if tokens.is_empty() {
                println!("No API tokens. Create one: lms-admin token create --name deploy --scopes backup:create,status:read --expires-days 90");
            }
            let now = Utc::now();
            for t in &tokens {
                let state = match (t.revoked_at, t.is_live(now)) {
                    (Some(at), _) => format!(
                        "revoked {} by {}",
                        utc(at),
                        printable(t.revoked_by_name.as_deref().unwrap_or("?"))
                    ),
                    (None, false) => "expired".to_owned(),
                    (None, true) => "live".to_owned(),
                };
                println!("{}  [{state}]  {}", t.name, scope_names(t));
                println!(
                    "  created {} by {}; {}; last used: {}",
                    utc(t.created_at),
                    printable(&t.created_by_name),
                    match t.expires_at {
                        Some(at) => format!("expires {}", utc(at)),
                        None => "does not expire".to_owned(),
                    },
                    t.last_used_at.map(utc).unwrap_or_else(|| "never".into())
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            let info = engine.revoke_token(&name, &actor).await.map_err(fail)?;
            println!(
                "Revoked API token \"{}\"; requests with it are refused from now on.",
                info.name
            );
            Ok(())
        }
    }
}

fn scope_names(info: &TokenInfo) -> String {
    info.scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
