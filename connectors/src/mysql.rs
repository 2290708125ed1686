//! Opening a MySQL or MariaDB table (`type: mysql`).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::datasource::TableProvider;
use datafusion_table_providers_mysql::pool::{Error as PoolError, MySQLConnectionPool};
use datafusion_table_providers_mysql::MySQLTableFactory;
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
    set("tcp_port", &c.port.to_string());
    set("user", &c.user);
    set("db", &c.database);
    // The driver's "preferred" is encryption without certificate checks; "required" checks them.
    set(
        "sslmode",
        match c.tls {
            Tls::Disable => "disabled",
            Tls::Prefer | Tls::Require => "preferred",
            Tls::VerifyFull => "required",
        },
    );
    if let Some(p) = &c.password {
        set("pass", p.expose());
    }
    let pool = MySQLConnectionPool::new(params)
        .await
        .map_err(|e| classify(c, e))?;
    MySQLTableFactory::new(Arc::new(pool))
        .table_provider(c.table_reference())
        .await
        .map_err(|e| c.table_error(e))
}

/// Blames a failed connection on the field to check (server error 1044 or 1049: the database;
/// 1045: the login).
fn classify(c: &DatabaseConnector, e: PoolError) -> ConnectorError {
    match e {
        PoolError::InvalidHostOrPortError { host, port, .. } => c.source_error(
            "host",
            format!("no server answers at {host}:{port}"),
            UNREACHABLE,
        ),
        e @ PoolError::InvalidUsernameOrPassword => c.source_error("password", e, REFUSED),
        PoolError::UnknownMySQLDatabase { message } => {
            c.source_error("database", message, NO_DATABASE)
        }
        e @ PoolError::InvalidRootCertPathError { .. } => c.source_error("tls", e, TLS),
        PoolError::MySQLConnectionError { source } => {
            let text = source.to_string();
            match &source {
                // Access denied to the database, or an unknown one.
                mysql_async::Error::Server(e) if e.code == 1044 || e.code == 1049 => {
                    c.source_error("database", &e.message, NO_DATABASE)
                }
                mysql_async::Error::Server(e) if e.code == 1045 => {
                    c.source_error("password", &e.message, REFUSED)
                }
                _ if text.to_ascii_lowercase().contains("ssl")
                    || text.to_ascii_lowercase().contains("tls") =>
                {
                    c.source_error("tls", text, TLS)
                }
                _ => c.source_error("host", text, UNREACHABLE),
            }
        }
        e => c.source_error("host", e, UNREACHABLE),
    }
}
