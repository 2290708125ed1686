//! `list-models`.

use std::path::Path;

use clap::Args;
use feed_engine::serving::artifacts;
use feed_engine::{Registry, Status};

use crate::output::table;

/// List models: name, status, active version, when it was trained, and its NDCG@10.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Path, args: ListArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for name in registry.models()? {
        let versions = registry.versions(&name)?;
        let active = versions.iter().find(|v| v.status == Status::Active);
        let latest = versions.last();
        let (trained_at, ndcg) = match active {
            Some(v) => {
                let dir = registry.version_files(
                    &name,
                    v.version,
                    &[artifacts::MANIFEST, artifacts::METRICS],
                )?;
                let manifest = artifacts::read_manifest(&dir).ok();
                let report = artifacts::read_report(&dir).ok().flatten();
                let ndcg = match (&manifest, &report) {
                    (Some(m), Some(r)) => r.policies.get(&m.primary_policy).map(|p| p.test.ndcg),
                    _ => None,
                };
                (
                    manifest.map(|m| m.deployed_at.format("%Y-%m-%d %H:%M:%S").to_string()),
                    ndcg,
                )
            }
            None => (None, None),
        };
        let status = match (active, latest) {
            (Some(a), Some(l)) if l.version != a.version => {
                format!("ACTIVE (v{} {})", l.version, l.status)
            }
            (Some(_), _) => "ACTIVE".to_string(),
            (None, Some(l)) => l.status.to_string(),
            (None, None) => "-".to_string(),
        };
        rows.push(vec![
            name.clone(),
            status.clone(),
            active.map(|v| v.version.to_string()).unwrap_or("-".into()),
            trained_at.clone().unwrap_or("-".into()),
            ndcg.map(|n| format!("{n:.4}")).unwrap_or("-".into()),
        ]);
        json.push(crate::wire::ModelListing {
            status: status.clone(),
            active_version: active.map(|v| v.version),
            latest_version: latest.map(|v| v.version),
            trained_at: trained_at.clone(),
            ndcg,
            name: name.clone(),
        });
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else if rows.is_empty() {
        println!(
            "no models in {}; create one with `feedctl create-model --file model.yaml`",
            home.display()
        );
    } else {
        print!(
            "{}",
            table(
                &["NAME", "STATUS", "VERSION", "TRAINED AT", "NDCG@10"],
                &rows
            )
        );
    }
    Ok(())
}
