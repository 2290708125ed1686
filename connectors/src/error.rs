use thiserror::Error;

/// Everything that can go wrong in a connector, grouped by who must act. No message carries a
/// secret: connectors redact their password from whatever a driver says before it lands here.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// The connector block is wrong: the user fixes the model file.
    #[error("connector `{connector}`: {field}: {message}")]
    Config {
        connector: String,
        /// The field of the connector block at fault (`path`, `delimiter`, ...).
        field: String,
        message: String,
    },
    /// The data source could not be read: a missing file, an unreachable server, a refused
    /// password, a missing table.
    #[error("connector `{connector}`: cannot read `{location}`: {message}")]
    Source {
        connector: String,
        /// The field of the connector block to check first (`path`, `host`, `password`,
        /// `table`, ...).
        field: String,
        /// Where the connector looked: a path, or a server, database and table (never a
        /// password).
        location: String,
        message: String,
        /// What to check or do.
        hint: String,
    },
    /// A bug in Feed or DataFusion, not the user's fault.
    #[error("connector `{connector}`: internal error: {message}")]
    Internal { connector: String, message: String },
}

impl ConnectorError {
    /// The connector id this error is about.
    pub fn connector(&self) -> &str {
        match self {
            Self::Config { connector, .. }
            | Self::Source { connector, .. }
            | Self::Internal { connector, .. } => connector,
        }
    }
}
