use thiserror::Error;

/// Everything that can go wrong in a connector, grouped by who must act.
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
    /// The data source could not be read: missing file, unreadable folder, bad format.
    #[error("connector `{connector}`: cannot read `{path}`: {message}")]
    Source {
        connector: String,
        path: String,
        message: String,
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
