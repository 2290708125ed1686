//! The checks of a `multi_task` block that need no data: its heads (names, one source each, an
//! event type the model accepts), its inputs and its training settings. Columns are checked
//! against the fetch when it is planned.

// Config errors are a cold path that ends the command; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use super::raw::{MultiTaskConfig, PolicyConfig};
use super::resolve::ModelConfig;
use crate::error::{did_you_mean, ConfigError};

/// The most heads a ranker may declare.
pub const MAX_HEADS: usize = 32;

type Range<'a> = &'a dyn Fn(&str, bool, &str) -> Result<(), ConfigError>;

pub(super) fn check(
    cfg: &ModelConfig,
    path: &str,
    c: &MultiTaskConfig,
    range: Range<'_>,
) -> Result<(), ConfigError> {
    if cfg.fetch.impressions.is_none() {
        return Err(cfg.error_at(
            &format!("{path}.type"),
            "a `multi_task` ranker trains on impressions, and the file declares no `fetch.impressions`",
            Some("add `fetch.impressions: SELECT user_id, item_id, timestamp, position, ... FROM ...`".into()),
        ));
    }
    if c.heads.is_empty() {
        return Err(cfg.error_at(
            &format!("{path}.heads"),
            "declares no head",
            Some("add `- {name: like, event: like}` or `- {name: like, label: like}`".into()),
        ));
    }
    range(
        "heads",
        c.heads.len() <= MAX_HEADS,
        &format!("at most {MAX_HEADS} heads"),
    )?;
    let mut names = HashSet::new();
    for (h, head) in c.heads.iter().enumerate() {
        let at = format!("{path}.heads[{h}]");
        super::resolve::check_name(cfg, &format!("{at}.name"), &head.name)?;
        if !names.insert(head.name.as_str()) {
            return Err(cfg.error_at(
                &format!("{at}.name"),
                format!("head `{}` is declared twice", head.name),
                Some("head names must be unique within the policy".into()),
            ));
        }
        match (&head.event, &head.label) {
            (Some(event), None) => {
                if !cfg.events.accepts(event) {
                    let hint = did_you_mean(event, cfg.events.types.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!(
                                "`events.types` lists: {}; add `{event}` there or name one of them",
                                cfg.events.types.join(", ")
                            )
                        });
                    return Err(cfg.error_at(
                        &format!("{at}.event"),
                        format!("`{event}` is not an event type of this model"),
                        Some(hint),
                    ));
                }
                if head.threshold.is_some() {
                    return Err(cfg.error_at(
                        &format!("{at}.threshold"),
                        "an `event:` head counts events; only a `label:` column has a threshold",
                        Some("remove `threshold`".into()),
                    ));
                }
            }
            (None, Some(_)) => {}
            (Some(_), Some(_)) => {
                return Err(cfg.error_at(
                    &format!("{at}.label"),
                    "a head takes its label from `event:` or from `label:`, not both",
                    Some("keep one of them".into()),
                ))
            }
            (None, None) => {
                return Err(cfg.error_at(
                    &at,
                    format!("head `{}` says neither what counts as the engagement", head.name),
                    Some(format!(
                        "add `event: {0}` (an event type) or `label: {0}` (a column of `fetch.impressions`)",
                        head.name
                    )),
                ))
            }
        }
        if let Some(t) = head.threshold {
            if !t.is_finite() {
                return Err(cfg.error_at(&format!("{at}.threshold"), "must be a number", None));
            }
        }
        if !(head.weight.is_finite() && head.weight > 0.0 && head.weight <= 1e6) {
            return Err(cfg.error_at(
                &format!("{at}.weight"),
                "must be a number > 0 and at most 1000000",
                None,
            ));
        }
    }
    range(
        "hidden",
        (1..=4096).contains(&c.hidden),
        "between 1 and 4096",
    )?;
    range(
        "embedding",
        (1..=1024).contains(&c.embedding),
        "between 1 and 1024",
    )?;
    range("experts", (1..=64).contains(&c.experts), "between 1 and 64")?;
    range(
        "dropout",
        (0.0..0.95).contains(&c.dropout),
        "at least 0 and below 0.95",
    )?;
    range(
        "id_l2",
        c.id_l2.is_finite() && c.id_l2 >= 0.0,
        "a number at least 0",
    )?;
    for (field, share) in [
        ("validation_share", c.validation_share),
        ("test_share", c.test_share),
    ] {
        range(field, share > 0.0 && share < 0.5, "above 0 and below 0.5")?;
    }
    range(
        "attribution_seconds",
        c.attribution_seconds > 0,
        "at least 1",
    )?;
    super::resolve::check_listed_once(
        cfg,
        &format!("{path}.affinity"),
        "",
        c.affinity.iter().map(String::as_str),
    )?;
    super::resolve::check_features(cfg, path, &c.user_features, &c.item_features)?;
    check_score_inputs(cfg, path, c)?;
    if let Some(p) = &c.position {
        range(
            "position.serve_at",
            (1..=100_000).contains(&p.serve_at),
            "between 1 and 100000",
        )?;
    }
    Ok(())
}

/// `scores:` names retrieval policies of the model, each once: a ranker's score is not an
/// input of another ranker (it has no out-of-fold fit, and two rankers could read each other).
fn check_score_inputs(
    cfg: &ModelConfig,
    path: &str,
    c: &MultiTaskConfig,
) -> Result<(), ConfigError> {
    super::resolve::check_listed_once(
        cfg,
        &format!("{path}.scores"),
        "",
        c.scores.iter().map(String::as_str),
    )?;
    let retrieval = || cfg.policies.iter().filter(|p| !p.is_ranker());
    for (k, name) in c.scores.iter().enumerate() {
        let at = format!("{path}.scores[{k}]");
        match cfg.policy(name) {
            Some(p) if !p.is_ranker() => {}
            Some(p) => {
                return Err(cfg.error_at(
                    &at,
                    format!(
                    "`{name}` is a `{}` ranker; a ranker reads the scores of retrieval policies",
                    p.kind()
                ),
                    Some("name a policy of type als, two_tower, sasrec or popular".into()),
                ))
            }
            None => {
                let hint = did_you_mean(name, retrieval().map(|p| p.name()))
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        let names: Vec<&str> = retrieval().map(|p| p.name()).collect();
                        match names.is_empty() {
                            true => "the model declares no retrieval policy; add one (`- {name: als, type: als}`)".into(),
                            false => format!("the model's retrieval policies: {}", names.join(", ")),
                        }
                    });
                return Err(cfg.error_at(
                    &at,
                    format!("`{name}` is not a policy of this model"),
                    Some(hint),
                ));
            }
        }
    }
    Ok(())
}

impl ModelConfig {
    /// The rankers the file declares.
    pub fn rankers(&self) -> impl Iterator<Item = (usize, &MultiTaskConfig)> {
        self.policies
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                PolicyConfig::MultiTask(c) => Some((i, c)),
                _ => None,
            })
    }
}
