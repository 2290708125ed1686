//! `keys create|list|revoke`: API keys for `feedctl serve`.

use std::path::Path;

use clap::{Args, Subcommand};
use feed_engine::registry::{NewKey, Scope};
use feed_engine::Registry;

use crate::output::table;

/// Manage the API keys a server checks (`Authorization: Bearer <key>`). Servers read the keys
/// at start and at every poll: a revoked key is refused from the next poll on.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key and print it once; only its hash is stored.
    Create(CreateKey),
    /// List the keys (never the keys themselves).
    List(ListKeys),
    /// Revoke a key by name or id.
    Revoke(RevokeKey),
}

#[derive(Debug, Args)]
struct CreateKey {
    /// What the key may do: `query` (read and query models), `events` (send events and catalog
    /// changes) or `admin` (everything, /metrics included).
    #[arg(long, value_parser = parse_scope)]
    scope: Scope,
    /// A name to tell the key by (unique among live keys).
    #[arg(long)]
    name: String,
    /// Requests per second the key may make, in bursts of one second's worth; beyond, 429.
    #[arg(long)]
    rate_limit: Option<f64>,
}

#[derive(Debug, Args)]
struct ListKeys {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RevokeKey {
    /// The key's name or id.
    name: String,
}

fn parse_scope(s: &str) -> Result<Scope, String> {
    s.parse::<Scope>()
        .map_err(|_| "one of query, events, admin".to_string())
}

pub fn run(home: &Path, args: KeysArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    match args.command {
        KeysCommand::Create(a) => {
            let (plain, key) = registry.create_key(&NewKey {
                name: a.name,
                scope: a.scope,
                rate_limit: a.rate_limit,
            })?;
            eprintln!(
                "created key `{}` (id {}, scope {}); it is shown only now:",
                key.name, key.id, key.scope
            );
            println!("{plain}");
        }
        KeysCommand::List(a) => {
            let keys = registry.keys()?;
            if a.json {
                let out: Vec<_> = keys.iter().map(crate::wire::KeyInfo::from).collect();
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = keys
                .iter()
                .map(|k| {
                    vec![
                        k.name.clone(),
                        k.id.clone(),
                        k.scope.to_string(),
                        k.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                        k.rate_limit.map_or("-".into(), |r| format!("{r}/s")),
                        k.revoked_at.map_or("live".into(), |t| {
                            format!("revoked {}", t.format("%Y-%m-%d %H:%M:%S"))
                        }),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(
                    &["NAME", "ID", "SCOPE", "CREATED", "RATE LIMIT", "STATE"],
                    &rows
                )
            );
        }
        KeysCommand::Revoke(a) => {
            let key = registry.revoke_key(&a.name)?;
            println!(
                "revoked key `{}` (id {}); servers refuse it from their next poll",
                key.name, key.id
            );
        }
    }
    Ok(())
}
