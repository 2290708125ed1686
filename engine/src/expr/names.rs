//! What a query may name, and the one rule by which a written name resolves. `validate` builds
//! [`Names`] from the fetch's schemas and the model file; serving builds it from a version's
//! tables and policies; both bind through the same code, so a saved query that validates never
//! fails at request time on a name.
//!
//! The rule: the exact name, else the one name that equals it ignoring ASCII case. Two names
//! that differ only in case make a case-folded reference ambiguous, and the error says so.

use datafusion::arrow::datatypes::{DataType, Schema};
use feed_lang::ast::Ident;
use feed_lang::{did_you_mean, ErrorKind, QueryError, Span};

use crate::config::{output_name, PolicyConfig};

/// A policy as queries see it: its name, its outputs and whether it has vectors to search.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyNames {
    pub name: String,
    pub heads: Vec<String>,
    pub vectors: bool,
}

/// The names a model offers: item and user columns with their types, and policies.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub items: Vec<(String, DataType)>,
    pub users: Vec<(String, DataType)>,
    pub policies: Vec<PolicyNames>,
    /// The event types the model accepts (`events.types`); empty: any.
    pub event_types: Vec<String>,
}

/// A resolved policy output: its canonical name (`als`, `ranker.like`), policy and head.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct OutputRef {
    pub name: String,
    pub policy: String,
    pub head: usize,
}

pub(crate) fn check_error(
    message: impl Into<String>,
    span: Span,
    hint: Option<String>,
) -> QueryError {
    let mut e = QueryError::new(ErrorKind::Check, message, span);
    e.hint = hint;
    e
}

/// The one resolution rule over `candidates`: exact, else the unique ASCII-case-insensitive
/// match. `Err(None)`: no match; `Err(Some(..))`: several that differ only in case.
pub fn resolve<'a>(
    written: &str,
    candidates: impl Iterator<Item = &'a str> + Clone,
) -> Result<&'a str, Option<Vec<&'a str>>> {
    if let Some(exact) = candidates.clone().find(|c| *c == written) {
        return Ok(exact);
    }
    let folded: Vec<&str> = candidates
        .filter(|c| c.eq_ignore_ascii_case(written))
        .collect();
    match folded.as_slice() {
        [one] => Ok(one),
        [] => Err(None),
        _ => Err(Some(folded)),
    }
}

fn column<'n>(
    columns: &'n [(String, DataType)],
    table: &str,
    written: &str,
    span: Span,
) -> Result<(&'n str, &'n DataType), QueryError> {
    match resolve(written, columns.iter().map(|c| c.0.as_str())) {
        Ok(name) => {
            let ty = &columns.iter().find(|c| c.0 == name).expect("resolved").1;
            Ok((name, ty))
        }
        Err(Some(several)) => Err(check_error(
            format!(
                "`{table}.{written}` is ambiguous: the {table}s have columns {}",
                several.join(" and ")
            ),
            span,
            Some("write the column's name in its exact case".into()),
        )),
        Err(None) => {
            let names = columns.iter().map(|c| c.0.as_str());
            let hint = match did_you_mean(written, names.clone()) {
                Some(s) => format!("did you mean `{table}.{s}`?"),
                None => format!("{table} columns: {}", names.collect::<Vec<_>>().join(", ")),
            };
            Err(check_error(
                format!("the {table}s have no column `{written}`"),
                span,
                Some(hint),
            ))
        }
    }
}

impl Names {
    /// Names from the tables a version serves (or a fetch yields) and the declared policies.
    pub fn new(items: &Schema, users: Option<&Schema>, policies: &[PolicyConfig]) -> Self {
        let fields = |s: &Schema| -> Vec<(String, DataType)> {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect()
        };
        Self {
            items: fields(items),
            users: users.map(fields).unwrap_or_default(),
            policies: policies
                .iter()
                .map(|p| PolicyNames {
                    name: p.name().to_string(),
                    heads: p.heads(),
                    vectors: p.has_vectors(),
                })
                .collect(),
            event_types: Vec::new(),
        }
    }

    /// These names with the model's accepted event types (what `recent()` may count).
    pub fn with_event_types(mut self, types: &[String]) -> Self {
        self.event_types = types.to_vec();
        self
    }

    /// The item column written `written`: its name as stored and its type.
    pub fn item(&self, written: &str, span: Span) -> Result<(&str, &DataType), QueryError> {
        column(&self.items, "item", written, span)
    }

    /// The user column written `written`: its name as stored and its type.
    pub fn user(&self, written: &str, span: Span) -> Result<(&str, &DataType), QueryError> {
        column(&self.users, "user", written, span)
    }

    /// The policy written `written`; `needs_vectors` for similarity search and diversity.
    pub fn policy(
        &self,
        written: &str,
        span: Span,
        needs_vectors: bool,
    ) -> Result<&PolicyNames, QueryError> {
        let names = self.policies.iter().map(|p| p.name.as_str());
        match resolve(written, names.clone()) {
            Ok(name) => {
                let p = self
                    .policies
                    .iter()
                    .find(|p| p.name == name)
                    .expect("resolved");
                if needs_vectors && !p.vectors {
                    let with: Vec<&str> = self
                        .policies
                        .iter()
                        .filter(|p| p.vectors)
                        .map(|p| p.name.as_str())
                        .collect();
                    return Err(check_error(
                        format!("policy `{name}` has no vectors"),
                        span,
                        Some(if with.is_empty() {
                            "no policy of this model has vectors (als, sasrec and two_tower do)"
                                .into()
                        } else {
                            format!("policies with vectors: {}", with.join(", "))
                        }),
                    ));
                }
                Ok(p)
            }
            Err(_) => {
                let hint = did_you_mean(written, names.clone())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!("policies: {}", names.collect::<Vec<_>>().join(", "))
                    });
                Err(check_error(
                    format!("no policy is named `{written}`"),
                    span,
                    Some(hint),
                ))
            }
        }
    }

    /// The policy output written as `parts` (`als`, `als.score`, `ranker.like`).
    pub fn output(&self, parts: &[Ident], span: Span) -> Result<OutputRef, QueryError> {
        let p = self.policy(&parts[0].name, parts[0].span, false)?;
        if parts.len() > 2 {
            return Err(check_error(
                format!(
                    "`{}` names too much: write `policy` or `policy.head`",
                    parts
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(".")
                ),
                span,
                None,
            ));
        }
        let head = parts.get(1).map(|h| h.name.as_str());
        let (name, head) = output_name(&p.name, &p.heads, head)
            .map_err(|e| check_error(e.message, span, e.hint))?;
        Ok(OutputRef {
            name,
            policy: p.name.clone(),
            head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_then_case_folded_then_ambiguous() {
        let cols = ["Year", "year_", "Title", "TITLE"];
        assert_eq!(resolve("Year", cols.iter().copied()), Ok("Year"));
        assert_eq!(resolve("year", cols.iter().copied()), Ok("Year"));
        assert_eq!(resolve("Title", cols.iter().copied()), Ok("Title"));
        assert_eq!(
            resolve("title", cols.iter().copied()),
            Err(Some(vec!["Title", "TITLE"]))
        );
        assert_eq!(resolve("genre", cols.iter().copied()), Err(None));
    }
}
