//! `type: postgres` and `type: mysql`: one table of a database server, read through
//! `datafusion-table-providers`, which pushes projections and filters down into the SQL it
//! sends.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::datasource::TableProvider;
use datafusion::prelude::SessionContext;
use datafusion::sql::TableReference;

use crate::env::{self, Secret};
use crate::{Connector, ConnectorError, DatabaseConnectorConfig, Tls};

/// Which server a [`DatabaseConnector`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    Mysql,
}

impl Server {
    fn scheme(self) -> &'static str {
        match self {
            Server::Postgres => "postgres",
            Server::Mysql => "mysql",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Server::Postgres => 5432,
            Server::Mysql => 3306,
        }
    }

    fn default_tls(self) -> Tls {
        match self {
            Server::Postgres => Tls::Prefer,
            // The MySQL driver has no fallback to plain TCP.
            Server::Mysql => Tls::Require,
        }
    }
}

/// A resolved database connector: references expanded, defaults filled in.
#[derive(Debug, Clone)]
pub struct DatabaseConnector {
    pub(crate) id: String,
    pub(crate) server: Server,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) database: String,
    pub(crate) user: String,
    pub(crate) password: Option<Secret>,
    pub(crate) table: String,
    pub(crate) tls: Tls,
}

impl DatabaseConnector {
    /// Resolves the block: expands `${NAME}` references and checks the fields, without
    /// connecting.
    pub fn new(server: Server, config: &DatabaseConnectorConfig) -> Result<Self, ConnectorError> {
        let id = config.id.as_str();
        let text = |field: &str, value: &str| -> Result<String, ConnectorError> {
            let value = env::expand(id, field, value)?;
            if value.trim().is_empty() {
                return Err(ConnectorError::Config {
                    connector: id.to_string(),
                    field: field.to_string(),
                    message: "is empty".into(),
                });
            }
            Ok(value)
        };
        let host = text("host", config.host.as_deref().unwrap_or("localhost"))?;
        let database = text("database", &config.database)?;
        let user = text("user", &config.user)?;
        let table = text("table", config.table.as_deref().unwrap_or(id))?;
        let password = match &config.password {
            Some(p) => Some(env::secret(id, "password", p)?),
            None => None,
        };
        let tls = config.tls.unwrap_or(server.default_tls());
        if server == Server::Mysql && tls == Tls::Prefer {
            return Err(ConnectorError::Config {
                connector: id.to_string(),
                field: "tls".into(),
                message: "mysql connections take `disable`, `require` or `verify_full`: the \
                          driver cannot fall back to plain TCP"
                    .into(),
            });
        }
        Ok(Self {
            id: id.to_string(),
            server,
            host,
            port: config.port.unwrap_or(server.default_port()),
            database,
            user,
            password,
            table,
            tls,
        })
    }

    /// Where this connector reads, for messages: `postgres://feed@host:5432/db`, table `t`.
    /// Never the password.
    pub fn location(&self) -> String {
        format!(
            "{}://{}@{}:{}/{} table {}",
            self.server.scheme(),
            self.user,
            self.host,
            self.port,
            self.database,
            self.table
        )
    }

    /// The table as DataFusion names it (`schema.table` splits at the dot).
    pub(crate) fn table_reference(&self) -> TableReference {
        TableReference::from(self.table.as_str())
    }

    /// A failure to reach or read the source: the driver's message with the password redacted,
    /// blamed on `field`, with what to check.
    pub(crate) fn source_error(
        &self,
        field: &str,
        message: impl std::fmt::Display,
        hint: &str,
    ) -> ConnectorError {
        let message = message.to_string();
        let message = match &self.password {
            Some(p) => p.redact(&message),
            None => message,
        };
        ConnectorError::Source {
            connector: self.id.clone(),
            field: field.to_string(),
            location: self.location(),
            // Drivers end their messages with advice of their own on separate lines.
            message: message.split_whitespace().collect::<Vec<_>>().join(" "),
            hint: hint.to_string(),
        }
    }

    /// A missing or unreadable table, once the connection itself worked.
    pub(crate) fn table_error(&self, message: impl std::fmt::Display) -> ConnectorError {
        self.source_error(
            "table",
            message,
            "check that the table exists in this database and that the user may read it \
             (`schema.table` for a table outside the default schema)",
        )
    }

    async fn provider(&self) -> Result<Arc<dyn TableProvider>, ConnectorError> {
        match self.server {
            Server::Postgres => crate::postgres::open(self).await,
            Server::Mysql => crate::mysql::open(self).await,
        }
    }
}

#[async_trait]
impl Connector for DatabaseConnector {
    fn id(&self) -> &str {
        &self.id
    }

    async fn register(&self, ctx: &SessionContext) -> Result<(), ConnectorError> {
        let provider = self.provider().await?;
        register_provider(ctx, &self.id, &self.location(), provider)
    }
}

/// Registers a database table's provider under the connector's id (a failure here is a bug:
/// ids are checked to be unique, valid names before any connector registers).
pub(crate) fn register_provider(
    ctx: &SessionContext,
    id: &str,
    location: &str,
    provider: Arc<dyn TableProvider>,
) -> Result<(), ConnectorError> {
    ctx.register_table(id, provider)
        .map_err(|e| ConnectorError::Internal {
            connector: id.to_string(),
            message: e.strip_backtrace().to_string(),
        })?;
    tracing::debug!(connector = %id, location = %location, "registered");
    Ok(())
}

/// The hint for a server that cannot be reached.
pub(crate) const UNREACHABLE: &str =
    "check `host` and `port`, and that the server is running and accepts TCP connections there";
/// The hint for a refused login.
pub(crate) const REFUSED: &str = "check `user`, and the password in the environment variable \
     that `password` names; the server refused them";
/// The hint for a database that does not exist.
pub(crate) const NO_DATABASE: &str =
    "check `database`: the server has no database of that name, or the user may not open it";
/// The hint for a failed encryption handshake.
pub(crate) const TLS: &str =
    "check `tls`: `disable` for a server without encryption, `require` to skip certificate checks";
