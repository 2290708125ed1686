//! `query`: a FeedQL query against the ACTIVE version, computed locally.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use feed_engine::{Error, Params, QueryRequest, Registry};

use crate::output::ranking_table;

/// Run a FeedQL query (text or a saved query of the model file) against the ACTIVE version of a
/// model, locally (no server needed).
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// FeedQL text.
    #[arg(long, conflicts_with = "saved", required_unless_present = "saved")]
    query: Option<String>,
    /// The name of a query under `queries:` in the model file.
    #[arg(long)]
    saved: Option<String>,
    /// A parameter, `name=value` (numbers, true/false and ["a","b"] are typed); repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// Override the query's LIMIT.
    #[arg(long, allow_negative_numbers = true)]
    limit: Option<usize>,
    /// Override the query's OFFSET.
    #[arg(long, allow_negative_numbers = true, conflicts_with = "page_token")]
    offset: Option<usize>,
    /// Continue from the page that printed this token (on stderr: `next page: --page-token ...`).
    #[arg(long)]
    page_token: Option<String>,
    /// Show the items' attributes.
    #[arg(long)]
    metadata: bool,
    /// Print the explanation as JSON: per stage, items in and out and time; per item, the
    /// retrievers that found it, policy scores, value-model terms and demotions.
    #[arg(long)]
    explain: bool,
}

pub async fn run(home: &Path, args: QueryArgs) -> anyhow::Result<()> {
    let mut params = Params::new();
    for p in &args.params {
        let (k, v) = crate::params::from_cli(p).map_err(|m| Error::invalid("--param", m))?;
        params.insert(k, v);
    }
    let registry = Registry::open(home)?;
    let name = args.model_name.clone();
    let req = QueryRequest {
        text: args.query,
        saved: args.saved,
        params,
        limit: args.limit,
        offset: args.offset,
        page_token: args.page_token,
        with_metadata: args.metadata,
        explain: args.explain,
        features: false,
    };
    let result = tokio::task::spawn_blocking(move || {
        let (snapshot, live) = feed_engine::live::load_active(&registry, &args.model_name)?;
        snapshot.query_live(&req, None, &live.over(&snapshot))
    })
    .await?
    .with_context(|| format!("querying model `{name}`"))?;
    println!(
        "model `{}` version {} ({} eligible items)",
        result.model, result.version, result.eligible
    );
    print!(
        "{}",
        ranking_table(&result.ids, &result.scores, result.metadata.as_ref())?
    );
    // On stderr: stdout stays the table, for scripts that read it.
    if let Some(t) = &result.next_page_token {
        eprintln!("next page: --page-token {t}");
    }
    if let Some(e) = &result.explanation {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::wire::Explanation::from(e))?
        );
    }
    Ok(())
}
