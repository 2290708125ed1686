//! Connectors: where a model's data lives.
//!
//! Each connector turns one block of the model file's `connectors:` list into tables registered
//! in a DataFusion [`SessionContext`](datafusion::prelude::SessionContext), named by the block's
//! `id`, so that the fetch SQL can read them. This crate knows nothing of the engine: it only
//! knows configuration blocks, paths and DataFusion.

mod config;
mod connector;
mod error;
mod file;
mod paths;

pub use config::{ColumnType, ConnectorConfig, FileConnectorConfig, FileFormat, SchemaField};
pub use connector::{build, Connector};
pub use error::ConnectorError;
pub use file::FileConnector;
pub use paths::DataPaths;
