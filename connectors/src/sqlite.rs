//! `type: sqlite`: one table of an SQLite database file.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::prelude::SessionContext;
use datafusion::sql::TableReference;
use datafusion_table_providers_common::sql::db_connection_pool::{JoinPushDown, Mode};
use datafusion_table_providers_sqlite::pool::SqliteConnectionPool;
use datafusion_table_providers_sqlite::SqliteTableFactory;

use crate::{env, Connector, ConnectorError, DataPaths, SqliteConnectorConfig};

/// How long a read waits for a writer's lock on the file before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolved `sqlite` connector.
#[derive(Debug, Clone)]
pub struct SqliteConnector {
    id: String,
    path: PathBuf,
    table: String,
}

impl SqliteConnector {
    /// Resolves the path against the model file's folder, confined to the data roots, and checks
    /// that the file exists: opening a missing path would create an empty database.
    pub fn new(config: &SqliteConnectorConfig, paths: &DataPaths) -> Result<Self, ConnectorError> {
        let id = config.id.as_str();
        let path = env::expand(id, "path", &config.path)?;
        let path = paths
            .local_file(&path)
            .map_err(|m| ConnectorError::Config {
                connector: id.to_string(),
                field: "path".into(),
                message: m,
            })?;
        let table = env::expand(id, "table", config.table.as_deref().unwrap_or(id))?;
        let this = Self {
            id: id.to_string(),
            path,
            table,
        };
        if !this.path.is_file() {
            return Err(this.source_error(
                "path",
                "no such database file",
                "check the path; relative paths start at the model file's folder",
            ));
        }
        Ok(this)
    }

    fn location(&self) -> String {
        format!("{} table {}", self.path.display(), self.table)
    }

    fn source_error(
        &self,
        field: &str,
        message: impl std::fmt::Display,
        hint: &str,
    ) -> ConnectorError {
        ConnectorError::Source {
            connector: self.id.clone(),
            field: field.into(),
            location: self.location(),
            message: message.to_string(),
            hint: hint.into(),
        }
    }
}

#[async_trait]
impl Connector for SqliteConnector {
    fn id(&self) -> &str {
        &self.id
    }

    async fn register(&self, ctx: &SessionContext) -> Result<(), ConnectorError> {
        let file = self.path.display().to_string();
        // The pool alone, without the provider's set-up, which would switch the user's file to
        // write-ahead logging: reading must not change the database.
        let pool = SqliteConnectionPool::new(
            &file,
            Mode::File,
            JoinPushDown::AllowedFor(file.clone()),
            vec![],
            BUSY_TIMEOUT,
        )
        .await
        .map_err(|e| {
            self.source_error(
                "path",
                e,
                "check that the file is an SQLite database that this user may read",
            )
        })?;
        let provider = SqliteTableFactory::new(Arc::new(pool))
            .table_provider(TableReference::from(self.table.as_str()))
            .await
            .map_err(|e| {
                self.source_error(
                    "table",
                    e,
                    "check that the table exists in this database file",
                )
            })?;
        crate::database::register_provider(ctx, &self.id, &self.location(), provider)
    }
}
