//! Opening a PostgreSQL table (`type: postgres`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion_table_providers_postgres::pool::{Error as PoolError, PostgresConnectionPool};
use datafusion_table_providers_postgres::PostgresTableFactory;
use secrecy::SecretString;

use crate::database::{DatabaseConnector, NO_DATABASE, REFUSED, TLS, UNREACHABLE};
use crate::{ConnectorError, Tls};

/// Connects (the pool checks a login and runs `SELECT 1`) and reads the table's schema.
pub(crate) async fn open(c: &DatabaseConnector) -> Result<Arc<dyn TableProvider>, ConnectorError> {
    let mut params: HashMap<String, SecretString> = HashMap::new();
    let mut set = |k: &str, v: &str| {
        params.insert(k.to_string(), SecretString::from(v.to_string()));
    };
    set("host", &c.host);
    set("port", &c.port.to_string());
    set("user", &c.user);
    set("db", &c.database);
    set(
        "sslmode",
        match c.tls {
            Tls::Disable => "disable",
            Tls::Prefer => "prefer",
            Tls::Require => "require",
            Tls::VerifyFull => "verify-full",
        },
    );
    if let Some(p) = &c.password {
        set("pass", p.expose());
    }
    let pool = PostgresConnectionPool::new(params)
        .await
        .map_err(|e| classify(c, e))?;
    PostgresTableFactory::new(Arc::new(pool))
        .table_provider(c.table_reference())
        .await
        .map_err(|e| c.table_error(e))
}

/// Blames a failed connection on the field to check: SQLSTATE 3D000 is a missing database, class
/// 28 a refused login.
fn classify(c: &DatabaseConnector, e: PoolError) -> ConnectorError {
    let unreachable = |detail: String| c.source_error("host", detail, UNREACHABLE);
    match e {
        PoolError::InvalidHostOrPortError { host, port, .. } => {
            unreachable(format!("no server answers at {host}:{port}"))
        }
        PoolError::InvalidUsernameOrPassword { source } => {
            let message = said(source.as_db_error().map(|d| d.message()), &source);
            c.source_error("password", message, REFUSED)
        }
        PoolError::PostgresConnectionError { source }
        | PoolError::ConnectionPoolError { source } => {
            let message = said(source.as_db_error().map(|d| d.message()), &source);
            match source.code().map(|s| s.code()) {
                Some("3D000") => c.source_error("database", message, NO_DATABASE),
                Some(code) if code.starts_with("28") => {
                    c.source_error("password", message, REFUSED)
                }
                _ if is_tls(&message) => c.source_error("tls", message, TLS),
                _ => unreachable(message),
            }
        }
        e @ (PoolError::FailedToBuildTlsConnectorError { .. }
        | PoolError::FailedToLoadCertError { .. }
        | PoolError::FailedToReadCertError { .. }
        | PoolError::InvalidRootCertPathError { .. }) => c.source_error("tls", e, TLS),
        e => unreachable(e.to_string()),
    }
}

/// What the server or the driver said: the server's own message (`server`) for a server error,
/// whose `Display` says only "db error"; the chain of causes otherwise.
fn said(server: Option<&str>, e: &dyn std::error::Error) -> String {
    if let Some(message) = server {
        return message.to_string();
    }
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn is_tls(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("tls") || m.contains("ssl")
}
