//! Admission of a training run against `training.memory_limit`: each policy's estimated peak
//! (`Policy::memory`) before any work, from the settings at `validate` and before a version
//! exists, and from the data's shape after the fetch.

use crate::config::{ModelConfig, PolicyConfig};
use crate::core::{human_bytes, MemoryEstimate};
use crate::dataset::Interactions;
use crate::policy;
use crate::Result;

/// Refuses the first policy whose training is estimated to need more than the budget; `data`
/// is the training cut once fetched.
pub fn check(config: &ModelConfig, data: Option<Interactions<'_>>) -> Result<()> {
    for (i, p) in config.policies.iter().enumerate() {
        let estimate = policy::build(config, p).memory(data)?;
        admit(config, i, p, &estimate)?;
    }
    Ok(())
}

/// An error located at the setting that grows the estimate's largest part (or at
/// `training.memory_limit` when no setting does), with the estimate by part and the budget.
pub fn admit(
    config: &ModelConfig,
    index: usize,
    p: &PolicyConfig,
    estimate: &MemoryEstimate,
) -> Result<()> {
    let budget = config.training_memory;
    let total = estimate.total();
    if total <= budget {
        return Ok(());
    }
    let settings = estimate.largest().map_or(&[][..], |part| part.settings);
    let path = match settings.first() {
        Some(s) => format!("policies[{index}].{s}"),
        None => "training.memory_limit".to_string(),
    };
    let basis = if estimate.with_data {
        "for the fetched data"
    } else {
        "from the settings alone, before the data is known"
    };
    let lower = match settings {
        [] => "fetch fewer events or items".to_string(),
        [one] => format!("lower `{one}`"),
        [first, second, ..] => format!("lower `{first}` or `{second}`"),
    };
    Err(config
        .error_at(
            &path,
            format!(
                "policy `{}` would need about {} to train ({basis}): more than `training.memory_limit` allows ({}). By part: {}",
                p.name(),
                human_bytes(total),
                human_bytes(budget),
                estimate.describe()
            ),
            Some(format!(
                "{lower}, or raise `training.memory_limit` if the machine has the memory"
            )),
        )
        .into())
}
