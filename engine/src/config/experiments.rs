//! `serving.experiments`: traffic split by a stable hash of the user id across variants — the
//! model as deployed (control), another version, another value model, or another saved query.
//!
//! A user's variant is a pure function of the experiment's name and the user id
//! ([`crate::util::hash::unit`]), so every server and every restart puts a user in the same
//! variant without storing an assignment, and the events a user sends later are attributed to
//! it by the same function.

// Config checks return the located error by value, as the rest of `config` does.
#![allow(clippy::result_large_err)]

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::raw::ValueModelConfig;
use super::resolve::{check_name, resolve_value_model, ModelConfig, ValueModel};
use crate::error::{did_you_mean, ConfigError};

/// The shares of an experiment's variants add up to this (percent).
pub const TOTAL_SHARE: f64 = 100.0;
/// The name `applies_to` uses for `POST /models/{name}/rank`.
pub const RANK: &str = "rank";

/// One experiment of `serving.experiments`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The experiment's name: it salts the hash, so two experiments split users independently.
    /// Renaming it reshuffles everyone.
    pub name: String,
    /// The requests it splits: saved query names, and `rank` for `POST /models/{name}/rank`.
    /// Empty (the default): every `rank` and saved-query request. A request is in at most one
    /// experiment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applies_to: Vec<String>,
    /// Two or more variants whose shares (percent of users) add up to 100.
    pub variants: Vec<VariantConfig>,
}

/// A variant: the model as deployed when it sets none of `version`, `value_model` and `query`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    pub name: String,
    /// Percent of users (of the requests the experiment applies to).
    pub share: f64,
    /// Answer with this version of the model (a complete one, e.g. made by `update-model
    /// --candidate`) instead of the ACTIVE one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Rank with this value model instead of the file's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_model: Option<ValueModelConfig>,
    /// Answer a request for one of the saved queries in `applies_to` with this saved query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// An experiment, checked.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    /// Saved query names and `rank`; empty: every request.
    pub applies_to: Vec<String>,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone)]
pub struct Variant {
    pub name: String,
    /// Percent of users.
    pub share: f64,
    pub arm: Arm,
}

/// What a variant answers with.
#[derive(Debug, Clone)]
pub enum Arm {
    /// The model as deployed.
    Control,
    Version(u32),
    ValueModel(ValueModel),
    /// Another saved query.
    Query(String),
}

/// What a request asks for, as experiments match it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    Rank,
    Saved(&'a str),
    /// FeedQL text sent with the request.
    Text,
}

impl Experiment {
    /// Whether requests for `target` are split by this experiment.
    /// FeedQL text sent with a request is never split: it names no saved query to compare.
    pub fn covers(&self, target: Target<'_>) -> bool {
        let named =
            |name: &str| self.applies_to.is_empty() || self.applies_to.iter().any(|a| a == name);
        match target {
            Target::Rank => named(RANK),
            Target::Saved(name) => named(name),
            Target::Text => false,
        }
    }

    /// The variant of `user`: where the user's point in [0, 100) falls among the cumulative
    /// shares.
    pub fn assign(&self, user: &str) -> &Variant {
        let point = crate::util::hash::unit(&self.name, user) * TOTAL_SHARE;
        let mut upto = 0.0;
        for v in &self.variants {
            upto += v.share;
            if point < upto {
                return v;
            }
        }
        // Rounding of shares that add up to 100 within the checked tolerance.
        self.variants.last().expect("an experiment has variants")
    }
}

impl ModelConfig {
    /// The experiment that splits requests for `target`, if one does.
    pub fn experiment(&self, target: Target<'_>) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.covers(target))
    }
}

/// Checks `serving.experiments` and resolves each variant (value models as `value_model` is).
pub(super) fn resolve(cfg: &ModelConfig) -> Result<Vec<Experiment>, ConfigError> {
    let mut out: Vec<Experiment> = Vec::new();
    for (i, e) in cfg.serving.experiments.iter().enumerate() {
        let at = format!("serving.experiments[{i}]");
        check_name(cfg, &format!("{at}.name"), &e.name)?;
        if out.iter().any(|o| o.name == e.name) {
            return Err(cfg.error_at(
                &format!("{at}.name"),
                format!("experiment `{}` is declared twice", e.name),
                Some("experiment names are unique".into()),
            ));
        }
        for (k, a) in e.applies_to.iter().enumerate() {
            let path = format!("{at}.applies_to[{k}]");
            let saved = cfg.queries.contains_key(a);
            if a == RANK && saved {
                return Err(cfg.error_at(
                    &path,
                    format!("`{RANK}` names both the rank route and a saved query"),
                    Some("rename the saved query".into()),
                ));
            }
            if a != RANK && !saved {
                let hint = did_you_mean(
                    a,
                    cfg.queries
                        .keys()
                        .map(String::as_str)
                        .chain(std::iter::once(RANK)),
                )
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| {
                    format!("name saved queries of `queries:`, or `{RANK}` for the rank route")
                });
                return Err(cfg.error_at(
                    &path,
                    format!("`{a}` is neither a saved query nor `{RANK}`"),
                    Some(hint),
                ));
            }
        }
        let variants = resolve_variants(cfg, e, &at)?;
        let experiment = Experiment {
            name: e.name.clone(),
            applies_to: e.applies_to.clone(),
            variants,
        };
        // A request is in at most one experiment: its variant decides what answers it.
        if let Some(other) = out.iter().find(|o| overlap(o, &experiment)) {
            return Err(cfg.error_at(
                &format!("{at}.applies_to"),
                format!(
                    "experiments `{}` and `{}` both split {}; a request is in at most one experiment",
                    other.name,
                    e.name,
                    shared(other, &experiment)
                ),
                Some("give each experiment its own `applies_to` (saved query names, `rank`)".into()),
            ));
        }
        out.push(experiment);
    }
    Ok(out)
}

fn resolve_variants(
    cfg: &ModelConfig,
    e: &ExperimentConfig,
    at: &str,
) -> Result<Vec<Variant>, ConfigError> {
    if e.variants.len() < 2 {
        return Err(cfg.error_at(
            &format!("{at}.variants"),
            format!(
                "has {} variant(s); an experiment compares two or more",
                e.variants.len()
            ),
            Some("add a control: `{name: control, share: 50}`".into()),
        ));
    }
    let mut names = HashSet::new();
    let mut total = 0.0;
    let mut out = Vec::with_capacity(e.variants.len());
    for (j, v) in e.variants.iter().enumerate() {
        let at = format!("{at}.variants[{j}]");
        check_name(cfg, &format!("{at}.name"), &v.name)?;
        if !names.insert(v.name.as_str()) {
            return Err(cfg.error_at(
                &format!("{at}.name"),
                format!("variant `{}` is declared twice in `{}`", v.name, e.name),
                None,
            ));
        }
        if !(v.share.is_finite() && v.share > 0.0 && v.share <= TOTAL_SHARE) {
            return Err(cfg.error_at(
                &format!("{at}.share"),
                format!(
                    "`{}` is not a share: a percent of users in (0, 100]",
                    v.share
                ),
                None,
            ));
        }
        total += v.share;
        let set: Vec<&str> = [
            ("version", v.version.is_some()),
            ("value_model", v.value_model.is_some()),
            ("query", v.query.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, set)| set.then_some(k))
        .collect();
        if set.len() > 1 {
            return Err(cfg.error_at(
                &at,
                format!("sets {}; a variant changes one thing", set.join(" and ")),
                Some("split it into one variant per change".into()),
            ));
        }
        let arm = if let Some(version) = v.version {
            if version == 0 {
                return Err(cfg.error_at(
                    &format!("{at}.version"),
                    "versions are numbered from 1",
                    None,
                ));
            }
            Arm::Version(version)
        } else if let Some(vm) = &v.value_model {
            Arm::ValueModel(resolve_value_model(cfg, vm, &format!("{at}.value_model"))?)
        } else if let Some(query) = &v.query {
            resolve_query_arm(cfg, e, &at, query)?
        } else {
            Arm::Control
        };
        out.push(Variant {
            name: v.name.clone(),
            share: v.share,
            arm,
        });
    }
    if (total - TOTAL_SHARE).abs() > 1e-6 {
        return Err(cfg.error_at(
            &format!("{at}.variants"),
            format!("the shares add up to {total}, not {TOTAL_SHARE}"),
            Some("shares are percents of users; make them add up to 100".into()),
        ));
    }
    Ok(out)
}

/// A `query:` variant replaces the saved queries the experiment applies to, so it needs them
/// named (and no `rank`, which runs no query).
fn resolve_query_arm(
    cfg: &ModelConfig,
    e: &ExperimentConfig,
    at: &str,
    query: &str,
) -> Result<Arm, ConfigError> {
    let path = format!("{at}.query");
    if !cfg.queries.contains_key(query) {
        let hint = did_you_mean(query, cfg.queries.keys().map(String::as_str))
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| "name a saved query of `queries:`".into());
        return Err(cfg.error_at(
            &path,
            format!("no saved query is named `{query}`"),
            Some(hint),
        ));
    }
    if e.applies_to.is_empty() || e.applies_to.iter().any(|a| a == RANK) {
        return Err(cfg.error_at(
            &path,
            "a `query` variant answers requests for saved queries with another one, so the experiment's `applies_to` must name only saved queries",
            Some(format!("e.g. `applies_to: [{}]`", cfg.queries.keys().find(|k| *k != query).map_or("for_you", String::as_str))),
        ));
    }
    Ok(Arm::Query(query.to_string()))
}

fn overlap(a: &Experiment, b: &Experiment) -> bool {
    a.applies_to.is_empty()
        || b.applies_to.is_empty()
        || a.applies_to.iter().any(|x| b.applies_to.contains(x))
}

fn shared(a: &Experiment, b: &Experiment) -> String {
    match a.applies_to.iter().find(|x| b.applies_to.contains(x)) {
        Some(x) if x == RANK => "`rank` requests".into(),
        Some(x) => format!("requests for `{x}`"),
        None => "every request".into(),
    }
}

/// The versions the experiments answer with besides ACTIVE, each with where the file names it
/// (checked against the registry before a version is made).
pub fn versions(experiments: &[Experiment]) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for (i, e) in experiments.iter().enumerate() {
        for (j, v) in e.variants.iter().enumerate() {
            if let Arm::Version(n) = v.arm {
                out.push((n, format!("serving.experiments[{i}].variants[{j}].version")));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const BASE: &str = "model: {name: m}
connectors: [{id: ev, type: file, path: e.csv}]
fetch:
  events: SELECT user_id, item_id, timestamp FROM ev
policies: [{name: als, type: als}, {name: pop, type: popular}]
queries:
  for_you: SELECT * FROM similarity(embedding = 'als', encoder = 'user', user = $user_id) LIMIT 10
  for_you_pop: SELECT * FROM popular(limit = 100) LIMIT 10
";

    fn parse(serving: &str) -> Result<ModelConfig, ConfigError> {
        let text = format!("{BASE}serving:\n  experiments:\n{serving}");
        crate::config::parse(&text, "m.yaml", std::path::Path::new("."))
    }

    const SPLIT: &str = "    - name: weights
      variants:
        - {name: control, share: 50}
        - {name: pop_heavy, share: 30, value_model: {weights: {als: 1, pop: 0.5}}}
        - {name: v2, share: 20, version: 2}
";

    #[test]
    fn ten_thousand_users_split_within_two_percent_and_keep_their_variant() {
        let cfg = parse(SPLIT).unwrap();
        let e = cfg.experiment(Target::Rank).unwrap();
        let users: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for u in &users {
            *counts.entry(e.assign(u).name.as_str()).or_default() += 1;
        }
        for v in &e.variants {
            let share = counts[v.name.as_str()] as f64 / users.len() as f64 * 100.0;
            assert!(
                (share - v.share).abs() <= 2.0,
                "{}: {share}% against {}%",
                v.name,
                v.share
            );
        }
        // Each user keeps the variant: again, in another order, from a config parsed again.
        let again = parse(SPLIT).unwrap();
        let e2 = again.experiment(Target::Saved("for_you")).unwrap();
        for u in users.iter().rev() {
            assert_eq!(e.assign(u).name, e2.assign(u).name);
        }
        assert!(matches!(e.variants[1].arm, Arm::ValueModel(_)));
        assert!(matches!(e.variants[2].arm, Arm::Version(2)));
        assert_eq!(
            versions(&cfg.experiments),
            vec![(2, "serving.experiments[0].variants[2].version".to_string())]
        );
    }

    #[test]
    fn experiments_cover_their_requests_only() {
        let cfg = parse(
            "    - name: a
      applies_to: [for_you]
      variants: [{name: control, share: 50}, {name: pop, share: 50, query: for_you_pop}]
    - name: b
      applies_to: [rank]
      variants: [{name: control, share: 90}, {name: other, share: 10}]
",
        )
        .unwrap();
        assert_eq!(cfg.experiment(Target::Saved("for_you")).unwrap().name, "a");
        assert_eq!(cfg.experiment(Target::Rank).unwrap().name, "b");
        assert!(cfg.experiment(Target::Saved("for_you_pop")).is_none());
        assert!(cfg.experiment(Target::Text).is_none());
    }

    #[test]
    fn bad_experiments_are_located() {
        let cases = [
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: d, share: 40}]\n",
                "serving.experiments[0].variants",
                "add up to 90",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 100}]\n",
                "serving.experiments[0].variants",
                "two or more",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: c, share: 50}]\n",
                "serving.experiments[0].variants[1].name",
                "declared twice",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: d, share: 50, version: 2, query: for_you}]\n",
                "serving.experiments[0].variants[1]",
                "one thing",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: d, share: 50, value_model: {weights: {alss: 1}}}]\n",
                "serving.experiments[0].variants[1].value_model.weights.alss",
                "als",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: d, share: 50, query: for_you_pop}]\n",
                "serving.experiments[0].variants[1].query",
                "applies_to",
            ),
            (
                "    - name: a\n      applies_to: [for_yuo]\n      variants: [{name: c, share: 50}, {name: d, share: 50}]\n",
                "serving.experiments[0].applies_to[0]",
                "for_you",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: 50}, {name: d, share: 50}]\n    - name: b\n      applies_to: [rank]\n      variants: [{name: c, share: 50}, {name: d, share: 50}]\n",
                "serving.experiments[1].applies_to",
                "at most one experiment",
            ),
            (
                "    - name: a\n      variants: [{name: c, share: -5}, {name: d, share: 105}]\n",
                "serving.experiments[0].variants[0].share",
                "not a share",
            ),
        ];
        for (yaml, path, words) in cases {
            let e = parse(yaml).unwrap_err();
            assert_eq!(e.path, path, "{e}");
            let text = format!("{e} {}", e.hint.clone().unwrap_or_default());
            assert!(text.contains(words), "{text}");
            assert!(e.line.is_some(), "{e}");
        }
    }
}
