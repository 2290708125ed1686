//! Connectors: where a model's data lives.
//!
//! Each connector turns one block of the model file's `connectors:` list into tables registered
//! in a DataFusion [`SessionContext`](datafusion::prelude::SessionContext), named by the block's
//! `id`, so that the fetch SQL can read them. This crate knows nothing of the engine: it only
//! knows configuration blocks, paths and DataFusion.

mod bucket;
mod config;
mod connector;
mod database;
mod env;
mod error;
mod file;
mod mysql;
mod paths;
mod postgres;
mod sqlite;
mod storage;

pub use config::{
    ColumnType, ConnectorConfig, DatabaseConnectorConfig, FileConnectorConfig, FileFormat,
    S3Config, SchemaField, SqliteConnectorConfig, Tls,
};
pub use connector::{build, Connector};
pub use database::{DatabaseConnector, Server};
pub use env::Secret;
pub use error::ConnectorError;
pub use file::FileConnector;
/// The `object_store` of DataFusion 54, for the engine's own objects (a models home).
pub use object_store;
pub use paths::DataPaths;
pub use sqlite::SqliteConnector;
pub use storage::StorageRoot;
