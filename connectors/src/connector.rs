//! The `Connector` extension point.

use async_trait::async_trait;
use datafusion::prelude::SessionContext;

use crate::{
    ConnectorConfig, ConnectorError, DataPaths, DatabaseConnector, FileConnector, Server,
    SqliteConnector,
};

/// A source of tables for fetch SQL.
///
/// Contract:
/// - [`Connector::register`] registers exactly one table named [`Connector::id`] in the
///   session, and fails with [`ConnectorError::Source`] (naming the id and the path or address)
///   when the source cannot be reached, so that a missing file is reported before any query runs.
/// - Registering reads at most metadata and a sample for schema inference (a database connector
///   also logs in, so that a refused password fails validation); rows are read only when a
///   query executes, as a stream of record batches.
/// - No error message and no `Debug` output holds a secret (see [`crate::Secret`]).
/// - Implementations hold only their resolved configuration; they are cheap to build and
///   `Send + Sync`, so one set of connectors can serve validation and fetch.
#[async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The table name, as written in the model file.
    fn id(&self) -> &str;

    /// Registers the connector's table in `ctx`.
    async fn register(&self, ctx: &SessionContext) -> Result<(), ConnectorError>;
}

/// Builds the connector for one configuration block. Relative paths resolve against the model
/// file's folder, and files are read only under the data roots (`paths`). Checks the block
/// without reading the data.
pub fn build(
    config: &ConnectorConfig,
    paths: &DataPaths,
) -> Result<Box<dyn Connector>, ConnectorError> {
    match config {
        ConnectorConfig::File(c) => Ok(Box::new(FileConnector::new(c, paths)?)),
        ConnectorConfig::Postgres(c) => Ok(Box::new(DatabaseConnector::new(Server::Postgres, c)?)),
        ConnectorConfig::Mysql(c) => Ok(Box::new(DatabaseConnector::new(Server::Mysql, c)?)),
        ConnectorConfig::Sqlite(c) => Ok(Box::new(SqliteConnector::new(c, paths)?)),
    }
}
