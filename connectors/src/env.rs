//! `${NAME}` references in connector blocks, and the secrets they bring.
//!
//! A model file is stored with every version it makes, and its connector blocks go into the
//! training key as written. So secrets stay references in the file and are read from the
//! environment only when a connector is built; the value lives in a [`Secret`], which never
//! prints, and whatever a driver says is passed through [`Secret::redact`] before it becomes an
//! error message.

use crate::ConnectorError;

/// A value that must not be shown: `Debug` prints `Secret(***)`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one call that hands it to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret read from the environment by a client library rather than through a
    /// reference, kept only to be cleaned from that library's messages.
    pub(crate) fn from_environment(value: String) -> Self {
        Self(value)
    }

    /// `text` with every occurrence of the secret replaced by `***`: for driver messages, which
    /// may echo what they were given.
    pub fn redact(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_string()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `value` with each `${NAME}` replaced by the environment variable NAME (`$$` is a literal
/// `$`). A variable that is not set is the model file's error, at `field`.
pub fn expand(connector: &str, field: &str, value: &str) -> Result<String, ConnectorError> {
    expand_with(connector, field, value, |name| std::env::var(name).ok())
}

/// A secret field: it must be written as an environment reference, so that the model file never
/// holds the secret itself.
pub fn secret(connector: &str, field: &str, value: &str) -> Result<Secret, ConnectorError> {
    if !value.contains("${") {
        return Err(ConnectorError::Config {
            connector: connector.to_string(),
            field: field.to_string(),
            message: format!(
                "is written in the file; the model file is stored with every version, so a \
                 {field} must come from the environment: write `{field}: ${{SOME_NAME}}` and \
                 export SOME_NAME before running feedctl"
            ),
        });
    }
    expand(connector, field, value).map(Secret)
}

fn expand_with(
    connector: &str,
    field: &str,
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConnectorError> {
    let err = |message: String| ConnectorError::Config {
        connector: connector.to_string(),
        field: field.to_string(),
        message,
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                err("has a `${` without its closing `}`; write `${NAME}`, or `$$` for a literal `$`".into())
            })?;
            let name = &body[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(err(format!(
                    "`${{{name}}}` is not an environment variable name (letters, digits and `_`, \
                     not starting with a digit)"
                )));
            }
            let found = lookup(name).ok_or_else(|| {
                err(format!(
                    "the environment variable `{name}` is not set; export it in the environment \
                     that runs feedctl (the shell, or the service's unit file)"
                ))
            })?;
            out.push_str(&found);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "PG_PASSWORD" => Some("s3cr3t".into()),
            "HOST" => Some("db.internal".into()),
            _ => None,
        }
    }

    fn expand_test(value: &str) -> Result<String, ConnectorError> {
        expand_with("ratings", "password", value, lookup)
    }

    #[test]
    fn references_expand_and_dollars_escape() {
        assert_eq!(expand_test("${PG_PASSWORD}").unwrap(), "s3cr3t");
        assert_eq!(
            expand_test("pre-${HOST}:${PG_PASSWORD}").unwrap(),
            "pre-db.internal:s3cr3t"
        );
        assert_eq!(expand_test("a$$b$c").unwrap(), "a$b$c");
        assert_eq!(expand_test("plain").unwrap(), "plain");
    }

    #[test]
    fn bad_references_name_the_field_and_the_variable() {
        let e = expand_test("${MISSING}").unwrap_err().to_string();
        assert!(e.contains("connector `ratings`: password") && e.contains("`MISSING` is not set"));
        let e = expand_test("${OPEN").unwrap_err().to_string();
        assert!(e.contains("closing `}`"), "{e}");
        let e = expand_test("${1X}").unwrap_err().to_string();
        assert!(e.contains("not an environment variable name"), "{e}");
    }

    #[test]
    fn a_secret_written_in_the_file_is_refused_and_never_printed() {
        let e = secret("ratings", "password", "hunter2")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must come from the environment"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(
            s.redact("auth failed for hunter2 at hunter2"),
            "auth failed for *** at ***"
        );
    }
}
