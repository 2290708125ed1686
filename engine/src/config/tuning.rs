//! `tuning:` on a policy: a search over its hyper-parameters, each trial trained on the training
//! cut and judged on the validation cut, before the version trains with the best one.
//!
//! A trial is a set of settings written over the policy's own fields, so every field a policy
//! has can be searched and is checked exactly as if the file had said it.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::raw::PolicyConfig;
use crate::util::linalg::Rng;

/// One trial: a value per searched field.
pub type Settings = BTreeMap<String, Value>;

/// Random search's trials when `trials` is not given.
pub const DEFAULT_TRIALS: usize = 10;
/// The most trials one policy may run (a grid's combinations included).
pub const MAX_TRIALS: usize = 1000;

/// `tuning:` of a policy.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuningConfig {
    /// Trials to run: random search draws this many (10 by default); a grid runs every
    /// combination, and `trials`, if given, must cover them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trials: Option<usize>,
    /// What a trial is judged by on the validation cut: `ndcg@10` (the default), `hr@10` or
    /// `mrr@10`.
    #[serde(default)]
    pub metric: TuningMetric,
    /// `random` (the default) or `grid` (every combination of value lists).
    #[serde(default)]
    pub method: TuningMethod,
    /// Per field of the policy: a list of values (`factors: [32, 64, 128]`), or a range:
    /// `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}` (lo > 0) or `{int: [lo, hi]}`
    /// (inclusive).
    pub search: BTreeMap<String, SearchSpace>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum TuningMetric {
    #[default]
    #[serde(rename = "ndcg@10")]
    Ndcg,
    #[serde(rename = "hr@10")]
    HitRate,
    #[serde(rename = "mrr@10")]
    Mrr,
}

impl TuningMetric {
    pub fn name(self) -> &'static str {
        match self {
            TuningMetric::Ndcg => "ndcg@10",
            TuningMetric::HitRate => "hr@10",
            TuningMetric::Mrr => "mrr@10",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TuningMethod {
    #[default]
    Random,
    Grid,
}

impl TuningMethod {
    pub fn name(self) -> &'static str {
        match self {
            TuningMethod::Random => "random",
            TuningMethod::Grid => "grid",
        }
    }
}

/// Where one field is searched.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged, try_from = "Value")]
pub enum SearchSpace {
    /// One of these values.
    Values(Vec<Value>),
    Range(Range),
}

/// What a search space is written as: a list, or a one-key map naming a range. Read by hand so
/// that a mistyped range says what it could be (an untagged enum only says it matched nothing).
impl TryFrom<Value> for SearchSpace {
    type Error = String;

    fn try_from(v: Value) -> Result<Self, String> {
        const KINDS: [&str; 3] = ["uniform", "log_uniform", "int"];
        let expected = "a list of values, or one of `{uniform: [lo, hi]}`, `{log_uniform: [lo, hi]}`, `{int: [lo, hi]}`";
        match v {
            Value::Array(values) => Ok(SearchSpace::Values(values)),
            Value::Object(map) if map.len() == 1 => {
                let (kind, _) = map.iter().next().expect("one entry");
                if !KINDS.contains(&kind.as_str()) {
                    let hint = crate::error::did_you_mean(kind, KINDS.iter().copied())
                        .map(|k| format!(" (did you mean `{k}`?)"))
                        .unwrap_or_default();
                    return Err(format!("unknown range `{kind}`{hint}: expected {expected}"));
                }
                serde_json::from_value(Value::Object(map))
                    .map(SearchSpace::Range)
                    .map_err(|e| format!("{e}: a range is two numbers, [lo, hi]"))
            }
            other => Err(format!("expected {expected}, found {other}")),
        }
    }
}

/// The schema a search space is written in (the shape the hand-written reading accepts).
#[derive(JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum SearchSpaceSchema {
    /// One of these values.
    Values(Vec<Value>),
    Range(Range),
}

impl JsonSchema for SearchSpace {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SearchSpace".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        SearchSpaceSchema::json_schema(generator)
    }
}

/// A range of numbers.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Range {
    Uniform([f64; 2]),
    LogUniform([f64; 2]),
    Int([i64; 2]),
}

impl SearchSpace {
    /// What is wrong with the space itself, if anything.
    pub fn problem(&self) -> Option<String> {
        match self {
            SearchSpace::Values(v) if v.is_empty() => Some("lists no value".into()),
            SearchSpace::Values(_) => None,
            SearchSpace::Range(Range::Uniform([lo, hi]))
                if !(lo.is_finite() && hi.is_finite() && lo < hi) =>
            {
                Some("`uniform` needs two finite numbers, the first below the second".into())
            }
            SearchSpace::Range(Range::LogUniform([lo, hi]))
                if !(*lo > 0.0 && hi.is_finite() && lo < hi) =>
            {
                Some("`log_uniform` needs 0 < lo < hi".into())
            }
            SearchSpace::Range(Range::Int([lo, hi])) if lo > hi => {
                Some("`int` needs lo <= hi".into())
            }
            SearchSpace::Range(_) => None,
        }
    }

    /// The values that stand for the space when its settings are checked: every listed value,
    /// or a range's two ends.
    pub fn probes(&self) -> Vec<Value> {
        match self {
            SearchSpace::Values(v) => v.clone(),
            SearchSpace::Range(Range::Uniform([lo, hi]) | Range::LogUniform([lo, hi])) => {
                vec![Value::from(*lo), Value::from(*hi)]
            }
            SearchSpace::Range(Range::Int([lo, hi])) => vec![Value::from(*lo), Value::from(*hi)],
        }
    }

    fn draw(&self, rng: &mut Rng) -> Value {
        let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        match self {
            SearchSpace::Values(v) => v[(unit * v.len() as f64) as usize % v.len()].clone(),
            SearchSpace::Range(Range::Uniform([lo, hi])) => Value::from(lo + unit * (hi - lo)),
            SearchSpace::Range(Range::LogUniform([lo, hi])) => {
                Value::from((lo.ln() + unit * (hi.ln() - lo.ln())).exp())
            }
            SearchSpace::Range(Range::Int([lo, hi])) => {
                let span = (hi - lo + 1) as f64;
                Value::from(lo + ((unit * span) as i64).min(hi - lo))
            }
        }
    }
}

impl TuningConfig {
    /// How many trials the search runs.
    pub fn trial_count(&self) -> usize {
        match self.method {
            TuningMethod::Grid => self.grid_size(),
            TuningMethod::Random => self.trials.unwrap_or(DEFAULT_TRIALS),
        }
    }

    /// Every combination's count, saturating.
    pub fn grid_size(&self) -> usize {
        self.search
            .values()
            .map(|s| match s {
                SearchSpace::Values(v) => v.len(),
                SearchSpace::Range(_) => 0,
            })
            .fold(1usize, usize::saturating_mul)
    }

    /// The trials, in the order they run: a grid's combinations, fields in name order and the
    /// last varying fastest, or `trials` random draws from a generator seeded by `seed`.
    pub fn trials(&self, seed: u64) -> Vec<Settings> {
        match self.method {
            TuningMethod::Grid => {
                let mut out = vec![Settings::new()];
                for (field, space) in &self.search {
                    let SearchSpace::Values(values) = space else {
                        return Vec::new();
                    };
                    out = out
                        .into_iter()
                        .flat_map(|s| {
                            values.iter().map(move |v| {
                                let mut s = s.clone();
                                s.insert(field.clone(), v.clone());
                                s
                            })
                        })
                        .collect();
                }
                out
            }
            TuningMethod::Random => {
                let mut rng = Rng::new(seed ^ 0x7475_6e69_6e67);
                (0..self.trial_count())
                    .map(|_| {
                        self.search
                            .iter()
                            .map(|(f, space)| (f.clone(), space.draw(&mut rng)))
                            .collect()
                    })
                    .collect()
            }
        }
    }
}

/// `policy` with `settings` written over its fields and its `tuning` dropped: the policy a
/// trial (or the tuned version) trains. Errs with serde's words when a setting does not fit.
pub fn apply(policy: &PolicyConfig, settings: &Settings) -> Result<PolicyConfig, String> {
    let mut doc = serde_json::to_value(policy).map_err(|e| e.to_string())?;
    let fields = doc
        .as_object_mut()
        .ok_or_else(|| "a policy is not an object".to_string())?;
    fields.remove("tuning");
    for (k, v) in settings {
        fields.insert(k.clone(), v.clone());
    }
    serde_json::from_value(doc).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(yaml: &str) -> TuningConfig {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn grids_combine_and_random_draws_are_seeded_and_in_range() {
        let grid = tuning("method: grid\nsearch: {factors: [8, 16], alpha: [1, 5, 10]}");
        let trials = grid.trials(42);
        assert_eq!((grid.trial_count(), trials.len()), (6, 6));
        // Fields in name order, the last varying fastest.
        assert_eq!(
            (&trials[1]["alpha"], &trials[1]["factors"]),
            (&Value::from(1), &Value::from(16))
        );
        assert_eq!(
            (&trials[2]["alpha"], &trials[2]["factors"]),
            (&Value::from(5), &Value::from(8))
        );
        let random = tuning(
            "trials: 50\nsearch: {regularization: {log_uniform: [0.001, 1.0]}, iterations: {int: [2, 4]}, factors: [8, 16]}",
        );
        let a = random.trials(7);
        assert_eq!(a, random.trials(7));
        assert_ne!(a, random.trials(8));
        for t in &a {
            let r = t["regularization"].as_f64().unwrap();
            assert!((0.001..1.0).contains(&r), "{r}");
            assert!((2..=4).contains(&t["iterations"].as_i64().unwrap()));
        }
        // Every integer of the range comes up.
        for i in 2..=4 {
            assert!(a.iter().any(|t| t["iterations"] == i));
        }
        assert!(tuning("search: {x: {int: [3, 2]}}").search["x"]
            .problem()
            .is_some());
        assert!(tuning("search: {x: {log_uniform: [0, 2]}}").search["x"]
            .problem()
            .is_some());
        assert!(tuning("search: {x: []}").search["x"].problem().is_some());
        let e = serde_yaml::from_str::<TuningConfig>("search: {x: {loguniform: [1, 2]}}")
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `log_uniform`"), "{e}");
    }

    #[test]
    fn settings_are_written_over_the_policys_fields() {
        let als: PolicyConfig = serde_yaml::from_str(
            "{name: als, type: als, factors: 8, tuning: {search: {factors: [16]}}}",
        )
        .unwrap();
        let mut s = Settings::new();
        s.insert("factors".into(), Value::from(32));
        let PolicyConfig::Als(tuned) = apply(&als, &s).unwrap() else {
            panic!("still ALS")
        };
        assert_eq!((tuned.factors, tuned.tuning.is_none()), (32, true));
        s.insert("factorz".into(), Value::from(1));
        assert!(apply(&als, &s).unwrap_err().contains("factorz"));
    }
}
