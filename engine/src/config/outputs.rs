//! Policy outputs by name. A policy has one or more named outputs (heads): today's policies one,
//! `score`; a multi-task ranker one per head (`like`, `hide` …). The value model, `ORDER BY
//! score(...)` and `explain` all address an output by the same name, resolved by this one rule:
//!
//! - `als` is the policy's output when it has exactly one; `als.score` names the same output.
//! - `ranker.like` is a head of a policy with several; its canonical name is `ranker.like`.
//!
//! Policy names are lowercase (checked when the file is read), so a name written in another case
//! resolves by folding ASCII case, the rule every FeedQL name follows.

use super::PolicyConfig;

impl PolicyConfig {
    /// The policy's named outputs, in the order its scores come (see `TrainedPolicy::heads`).
    pub fn heads(&self) -> Vec<String> {
        match self {
            Self::MultiTask(c) => c.heads.iter().map(|h| h.name.clone()).collect(),
            Self::Onnx(c) => c.outputs.iter().map(|o| o.name.clone()).collect(),
            _ => vec![SINGLE_HEAD.to_string()],
        }
    }
}

/// The name of the output of a single-output policy.
pub const SINGLE_HEAD: &str = "score";

/// Why a written output name does not resolve, with what to write instead.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputError {
    pub message: String,
    pub hint: Option<String>,
}

/// The canonical name of the output written `policy` or `policy.head` of a policy with `heads`,
/// and the head's index.
pub fn output_name(
    policy: &str,
    heads: &[String],
    head: Option<&str>,
) -> Result<(String, usize), OutputError> {
    match (heads, head) {
        ([_], None) => Ok((policy.to_string(), 0)),
        (_, None) => Err(OutputError {
            message: format!(
                "policy `{policy}` has {} outputs; name one of them",
                heads.len()
            ),
            hint: Some(
                heads
                    .iter()
                    .map(|h| format!("`{policy}.{h}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        }),
        (_, Some(h)) => match heads.iter().position(|x| x.eq_ignore_ascii_case(h)) {
            Some(i) if heads.len() == 1 => Ok((policy.to_string(), i)),
            Some(i) => Ok((format!("{policy}.{}", heads[i]), i)),
            None => Err(OutputError {
                message: if heads.len() == 1 {
                    format!("policy `{policy}` has one output and no head `{h}`")
                } else {
                    format!("policy `{policy}` has no head `{h}`")
                },
                hint: Some(if heads.len() == 1 {
                    format!("write `{policy}`")
                } else {
                    crate::error::did_you_mean(h, heads.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{policy}.{s}`?"))
                        .unwrap_or_else(|| format!("its heads: {}", heads.join(", ")))
                }),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_resolve_by_one_rule() {
        let one = vec!["score".to_string()];
        let two = vec!["like".to_string(), "hide".to_string()];
        assert_eq!(output_name("als", &one, None).unwrap(), ("als".into(), 0));
        assert_eq!(
            output_name("als", &one, Some("SCORE")).unwrap(),
            ("als".into(), 0)
        );
        assert_eq!(
            output_name("ranker", &two, Some("hide")).unwrap(),
            ("ranker.hide".into(), 1)
        );
        let e = output_name("ranker", &two, None).unwrap_err();
        assert!(e.message.contains("2 outputs"), "{e:?}");
        let e = output_name("ranker", &two, Some("likes")).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean `ranker.like`?"));
        let e = output_name("als", &one, Some("like")).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("write `als`"));
    }
}
