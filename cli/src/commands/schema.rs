//! `schema`: the JSON Schema of the model file, for editors.

use clap::Args;

/// Print the JSON Schema of the model file (the same as spec/model.schema.json).
#[derive(Debug, Args)]
pub struct SchemaArgs {}

pub fn run(_: SchemaArgs) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(&feed_engine::config::json_schema())?
    );
    Ok(())
}
