//! TUNING: each policy's `tuning:` search, run before training. A trial trains the policy with
//! its settings on the training cut and is judged on the validation cut (never on test), as
//! early stopping is; the best trial's settings then train the version like any other policy.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::config::tuning::{self, Settings, TuningMetric};
use crate::config::{ModelConfig, PolicyConfig};
use crate::core::TrainContext;
use crate::dataset::{Cut, Dataset, Target};
use crate::error::{Error, Result};
use crate::eval::{self, TrialReport, TuningReport};
use crate::policy;

/// What the search decided.
pub(super) struct Tuned {
    /// The model with each tuned policy's best settings in place (and no `tuning:` left).
    pub config: ModelConfig,
    /// Per tuned policy: the settings kept and the trial table.
    pub policies: BTreeMap<String, (Settings, TuningReport)>,
}

/// Whether any policy of `config` searches.
pub(super) fn any(config: &ModelConfig) -> bool {
    config.policies.iter().any(|p| p.tuning().is_some())
}

/// Runs every tuned policy's trials, one after the other, logging each.
pub(super) fn run(config: &ModelConfig, ds: &Dataset, ctx: &TrainContext<'_>) -> Result<Tuned> {
    let mut tuned = config.clone();
    tuned.declared_policies = Some(config.policies.clone());
    let mut policies = BTreeMap::new();
    for (i, p) in config.policies.iter().enumerate() {
        let Some(search) = p.tuning() else {
            continue;
        };
        let trials = search.trials(config.training.seed);
        let mut table = Vec::with_capacity(trials.len());
        for (n, settings) in trials.iter().enumerate() {
            ctx.check_cancelled()?;
            let trial = setting(p, settings)?;
            let start = Instant::now();
            let built = policy::build(config, &trial);
            let train = ds.view(Cut::Train);
            super::budget::admit(config, i, &trial, &built.memory(Some(train))?)?;
            let model = built.train(train, ctx)?;
            let m = eval::evaluate(
                model.as_ref(),
                ds,
                Target::Valid,
                config.training.eval_users,
            );
            let valid = match search.metric {
                TuningMetric::Ndcg => m.ndcg,
                TuningMetric::HitRate => m.hit_rate,
                TuningMetric::Mrr => m.mrr,
            };
            let seconds = start.elapsed().as_secs_f64();
            (ctx.log)(format!(
                "{}: trial {}/{} {} → validation {} {valid:.4} ({seconds:.1}s)",
                p.name(),
                n + 1,
                trials.len(),
                words(settings),
                search.metric.name(),
            ));
            table.push(TrialReport {
                settings: settings.clone(),
                valid,
                seconds,
            });
        }
        if table.iter().all(|t| t.valid == 0.0) {
            return Err(Error::invalid(
                format!("policies[{i}].tuning"),
                format!(
                    "{}: every trial scored 0 on the validation cut, so the search cannot choose",
                    p.name()
                ),
            )
            .with_hint("tuning needs users with at least three events (a validation event and a test event after their history); drop `tuning:` for this data"));
        }
        // The highest figure; the earliest trial wins a tie.
        let best = (0..table.len())
            .reduce(|b, t| {
                if table[t].valid > table[b].valid {
                    t
                } else {
                    b
                }
            })
            .ok_or_else(|| Error::Internal(format!("{}: a search without trials", p.name())))?;
        let kept = table[best].settings.clone();
        (ctx.log)(format!(
            "{}: keeping trial {} ({}), validation {} {:.4}",
            p.name(),
            best + 1,
            words(&kept),
            search.metric.name(),
            table[best].valid
        ));
        tuned.policies[i] = setting(p, &kept)?;
        policies.insert(
            p.name().to_string(),
            (
                kept,
                TuningReport {
                    metric: search.metric.name().to_string(),
                    method: search.method.name().to_string(),
                    trials: table,
                    best,
                },
            ),
        );
    }
    Ok(Tuned {
        config: tuned,
        policies,
    })
}

/// `p` with `settings` in place; validation checked every setting the search can draw, so a
/// failure here is a bug.
fn setting(p: &PolicyConfig, settings: &Settings) -> Result<PolicyConfig> {
    tuning::apply(p, settings).map_err(|e| {
        Error::Internal(format!(
            "{}: the settings {} do not fit after validation: {e}",
            p.name(),
            words(settings)
        ))
    })
}

/// `factors=64 regularization=0.0123`.
pub(crate) fn words(settings: &Settings) -> String {
    settings
        .iter()
        .map(|(k, v)| match v.as_f64() {
            Some(f) if !v.is_i64() && !v.is_u64() && f != 0.0 && f.abs() < 0.01 => {
                format!("{k}={f:.3e}")
            }
            Some(f) if !v.is_i64() && !v.is_u64() => format!("{k}={f:.4}"),
            _ => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
