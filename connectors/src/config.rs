//! The connector blocks of the model file, as written by the user.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of `connectors:`. `type` picks the kind of source.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConnectorConfig {
    /// Files on disk: CSV, TSV, Parquet or newline-delimited JSON; one file, a folder or a glob.
    File(FileConnectorConfig),
    /// One table of a PostgreSQL database.
    Postgres(DatabaseConnectorConfig),
    /// One table of a MySQL or MariaDB database.
    Mysql(DatabaseConnectorConfig),
    /// One table of an SQLite database file.
    Sqlite(SqliteConnectorConfig),
}

impl ConnectorConfig {
    /// The table name this connector registers, used in fetch SQL.
    pub fn id(&self) -> &str {
        match self {
            Self::File(c) => &c.id,
            Self::Postgres(c) | Self::Mysql(c) => &c.id,
            Self::Sqlite(c) => &c.id,
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
    /// paths resolve against the folder of the model file. On object storage: `s3://bucket/key`,
    /// `gs://bucket/key` or `az://container/key` (one object, or a prefix ending in `/`; globs are
    /// for local paths only).
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
    /// For an `s3://` path: the endpoint, region and credentials. Each field left out is read
    /// from the environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
    #[serde(default)]
    pub s3: Option<S3Config>,
}

/// `s3:` of a file connector: where an S3-compatible store is and how to sign requests. Every
/// field may name environment variables as `${NAME}`; the secret key and the session token must.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The service's URL, for S3-compatible stores (MinIO, Ceph, R2, ...): `http://host:9000`.
    /// Default: `AWS_ENDPOINT_URL`, else Amazon S3 itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region (default: `AWS_REGION`, else `us-east-1`).
    #[serde(default)]
    pub region: Option<String>,
    /// The access key id (default: `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// The secret access key, as an environment reference: `${S3_SECRET}` (default:
    /// `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// A session token for temporary credentials, as an environment reference (default:
    /// `AWS_SESSION_TOKEN`).
    #[serde(default)]
    pub session_token: Option<String>,
}

/// `type: postgres` and `type: mysql`: one table of a database server. Every text field may
/// name environment variables as `${NAME}`; the password must, so that the model file, which is
/// stored with every version, never holds it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConnectorConfig {
    /// Table name for fetch SQL: `[a-z0-9_]+`, unique in the file.
    pub id: String,
    /// The server's host name or address (default `localhost`).
    #[serde(default)]
    pub host: Option<String>,
    /// The server's TCP port (default 5432 for PostgreSQL, 3306 for MySQL).
    #[serde(default)]
    pub port: Option<u16>,
    /// The database to read.
    pub database: String,
    /// The user to connect as.
    pub user: String,
    /// The user's password, as an environment reference: `${PG_PASSWORD}`. Leave it out for
    /// servers that trust the connection.
    #[serde(default)]
    pub password: Option<String>,
    /// The table this id stands for, `schema.table` or `table` (default: the id).
    #[serde(default)]
    pub table: Option<String>,
    /// Encryption of the connection (default `prefer` for PostgreSQL, `require` for MySQL).
    #[serde(default)]
    pub tls: Option<Tls>,
}

/// How a database connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Tls {
    /// Plain TCP.
    Disable,
    /// Encrypted when the server offers it, plain otherwise (PostgreSQL only).
    Prefer,
    /// Encrypted, without checking the server's certificate.
    Require,
    /// Encrypted, with the server's certificate and host name checked against the system's
    /// trusted roots.
    VerifyFull,
}

/// `type: sqlite`: one table of an SQLite database file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteConnectorConfig {
    /// Table name for fetch SQL: `[a-z0-9_]+`, unique in the file.
    pub id: String,
    /// The database file. Relative paths resolve against the folder of the model file.
    pub path: String,
    /// The table this id stands for (default: the id).
    #[serde(default)]
    pub table: Option<String>,
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
