//! `schema`: the JSON Schema of the model file, for editors; or the OpenAPI document of the HTTP
//! API.

use clap::Args;

/// Print the JSON Schema of the model file (the same as spec/model.schema.json), or with
/// `--openapi` the OpenAPI 3.1 document of the HTTP API (spec/openapi.json).
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Print the OpenAPI document of `feedctl serve` instead.
    #[arg(long)]
    openapi: bool,
}

pub fn run(args: SchemaArgs) -> anyhow::Result<()> {
    let doc = if args.openapi {
        crate::server::openapi::document()
    } else {
        feed_engine::config::json_schema()
    };
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}
