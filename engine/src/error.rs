//! The engine's one error type, grouped by who must act.

use std::fmt;

use thiserror::Error;

/// A problem in the model file, located as precisely as we can: the file, the line and column
/// when known, and always the field path (`policies[1].factors`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line and column of the offending value or key.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The field path, e.g. `fetch.events` or `policies[0].name`; empty for the whole file.
    pub path: String,
    pub message: String,
    /// What to do about it, e.g. `did you mean `factors`?`.
    pub hint: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": ")?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Everything that can fail in the engine.
#[derive(Debug, Error)]
pub enum Error {
    /// The model file is wrong; nothing was started. The user fixes the file.
    #[error("{0}")]
    Config(Box<ConfigError>),
    /// A request names something that does not exist (model, version, user).
    #[error("{what} `{name}` not found{}", hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    NotFound {
        what: &'static str,
        name: String,
        hint: Option<String>,
    },
    /// A FeedQL query is wrong: the error carries its span; `text` is the query, for rendering.
    #[error("{}", error.one_line(text))]
    Query {
        error: Box<feed_lang::QueryError>,
        text: String,
    },
    /// A request is well-formed but asks for something invalid: a parameter value of the wrong
    /// type, a limit out of range, a model that already exists. The caller fixes the request.
    #[error("{message}{}", hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
    Invalid {
        /// What is at fault: `$since`, `limit`, `model.name`, `fetch.events` ...
        what: String,
        message: String,
        hint: Option<String>,
    },
    /// The data source failed while reading (a file went away, a value does not parse).
    #[error("reading data: {what}: {message}")]
    Source {
        /// Which fetch or connector: `fetch.events`, `connector ratings`.
        what: String,
        message: String,
    },
    /// The home folder could not be read or written. The cause is part of the message, not
    /// a separate source, so that a chain printed whole (`{:#}`) says it once.
    #[error("storage: {context}: {cause}")]
    Storage {
        context: String,
        cause: std::io::Error,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A bug: an invariant of Feed does not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(Box::new(e))
    }
}

impl Error {
    /// A query error about `text`.
    pub fn query(error: feed_lang::QueryError, text: &str) -> Self {
        Error::Query {
            error: Box::new(error),
            text: text.to_string(),
        }
    }

    /// The request's `what` is invalid.
    pub fn invalid(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            what: what.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with what to do about it (for [`Error::Invalid`]; others are unchanged).
    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        if let Error::Invalid { hint, .. } = &mut self {
            *hint = Some(h.into());
        }
        self
    }

    /// Reading `what` from its source failed.
    pub fn source(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Source {
            what: what.into(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with what we were doing and where.
    pub fn storage(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Storage {
            context: context.into(),
            cause: source,
        }
    }

    /// Whether the caller (user, request) is at fault rather than the system.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::Config(_) | Error::NotFound { .. } | Error::Invalid { .. } | Error::Query { .. }
        )
    }
}

/// Extension to attach storage context to I/O results.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::storage(context(), e))
    }
}

/// The closest candidate to `word` among `candidates`, if it is close enough to be a likely typo
/// (the one rule of FeedQL's hints, `feed_lang::did_you_mean`, for every hint of the engine).
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    feed_lang::did_you_mean(word, candidates).map(str::to_string)
}
