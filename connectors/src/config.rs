//! The connector blocks of the model file, as written by the user.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of `connectors:`. `type` picks the kind of source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectorConfig {
    /// Files on disk: CSV, TSV, Parquet or newline-delimited JSON; one file, a folder or a glob.
    File(FileConnectorConfig),
}

impl ConnectorConfig {
    /// The table name this connector registers, used in fetch SQL.
    pub fn id(&self) -> &str {
        match self {
            Self::File(c) => &c.id,
        }
    }
}

/// `type: file`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConnectorConfig {
    /// Table name for fetch SQL: `[a-z0-9_]+`, unique in the file.
    pub id: String,
    /// A file, a folder (every file of the format inside) or a glob (`data/*.csv`). Relative
    /// paths resolve against the folder of the model file.
    pub path: String,
    /// The format; by default taken from the file extension (`.csv`, `.tsv`, `.parquet`,
    /// `.json`/`.ndjson`/`.jsonl`).
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// CSV/TSV: whether the first line holds column names (default true). Without a header,
    /// columns are `column_1`, `column_2`, ... unless `schema` names them.
    #[serde(default)]
    pub has_header: Option<bool>,
    /// CSV/TSV: the field delimiter, one ASCII character (default `,` for CSV, tab for TSV).
    #[serde(default)]
    pub delimiter: Option<String>,
    /// The columns, in file order, with their types; by default inferred from the data.
    #[serde(default)]
    pub schema: Option<Vec<SchemaField>>,
}

/// File formats the `file` connector reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Csv,
    Tsv,
    Parquet,
    /// Newline-delimited JSON, one object per line.
    Ndjson,
}

/// One column of a declared schema.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemaField {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: ColumnType,
}

/// Column types a schema may declare. Times given as integer seconds are `int`; fetch SQL can
/// convert text times with `to_timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    String,
    Int,
    Float,
    Bool,
}
