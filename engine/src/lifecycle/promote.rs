//! `feedctl promote`: the shadow version, or the winning variant of an experiment, made ACTIVE.
//!
//! A version (the shadow, a `version:` variant) is made ACTIVE by moving the pointer, as a
//! rollback does. A value model, a saved query or the control is not a version: promoting it
//! makes a new version from the ACTIVE one's trained artifacts (as a serving-only update does),
//! whose model file is the ACTIVE one's with the variant written in and the experiment removed.

use std::sync::Arc;

use crate::config::experiments::{Arm, Experiment};
use crate::config::ModelConfig;
use crate::error::{Error, Result};
use crate::registry::{Move, Registry};

/// What to promote.
#[derive(Debug, Clone)]
pub enum Candidate {
    /// The version `feedctl shadow` set.
    Shadow,
    /// A variant by name, of `experiment` (needed only when two experiments have a variant of
    /// that name).
    Variant {
        experiment: Option<String>,
        variant: String,
    },
}

/// What a promotion did.
#[derive(Debug, Clone)]
pub enum Promoted {
    /// ACTIVE moved to an existing version.
    Moved(Move),
    /// A new version serves the variant, made from `from`'s artifacts.
    Made {
        from: u32,
        version: u32,
        /// ACTIVE, or INACTIVE when a newer version became ACTIVE first.
        status: crate::registry::Status,
        /// The model file of the new version (for the user's own file to follow).
        text: String,
    },
}

/// Promotes `candidate` of `model`. Refused while a version is being made (it would replace the
/// promoted one when it deploys); a version is moved to anyway with `force`.
#[tracing::instrument(skip(registry))]
pub async fn promote(
    registry: &Registry,
    model: &str,
    candidate: Candidate,
    force: bool,
) -> Result<Promoted> {
    let (reg, name) = (registry.clone(), model.to_string());
    let active = super::on_blocking_pool("reading the ACTIVE version", move || {
        let active = reg
            .active_version(&name)?
            .ok_or_else(|| reg.no_active_version(&name))?;
        let dir = reg.version_files(&name, active, &["model.yaml"])?;
        let config = crate::config::ModelConfig::load_stored(&dir)?;
        Ok((active, config))
    })
    .await?;
    let (active, config) = active;
    let (found, arm, why) = match &candidate {
        Candidate::Shadow => {
            let version = registry.shadow(model)?.map(|p| p.version).ok_or_else(|| {
                Error::invalid("shadow", format!("`{model}` has no shadow version"))
                    .with_hint("set one with `feedctl shadow --model-name M --version N`")
            })?;
            let why =
                format!("promote: shadow version {version} made ACTIVE (was version {active})");
            (None, Arm::Version(version), why)
        }
        Candidate::Variant {
            experiment,
            variant,
        } => {
            let (e, v) = find_variant(&config, experiment.as_deref(), variant)?;
            let why = format!(
                "promote: variant `{}` of experiment `{}` (was version {active})",
                v.name, e.name
            );
            (Some((e.name.clone(), v.name.clone())), v.arm.clone(), why)
        }
    };
    match arm {
        Arm::Version(to) => {
            let (reg, name) = (registry.clone(), model.to_string());
            let m = super::on_blocking_pool("moving ACTIVE", move || {
                super::rollback::move_to(&reg, &name, Some(to), force, |_| why.clone())
            })
            .await?;
            Ok(Promoted::Moved(m))
        }
        _ => {
            let (experiment, variant) = found.expect("only a variant has other arms");
            let text = rewrite(&config, &experiment, &variant)?;
            make_version(registry, config, active, text, &why).await
        }
    }
}

/// The variant named `variant` (of `experiment` when given) in the ACTIVE version's file.
fn find_variant<'a>(
    config: &'a ModelConfig,
    experiment: Option<&str>,
    variant: &str,
) -> Result<(&'a Experiment, &'a crate::config::experiments::Variant)> {
    if config.experiments.is_empty() {
        return Err(Error::invalid(
            "variant",
            format!("the ACTIVE version of `{}` runs no experiment", config.name),
        )
        .with_hint("experiments are declared in `serving.experiments` of the model file"));
    }
    let candidates: Vec<_> = config
        .experiments
        .iter()
        .filter(|e| experiment.is_none_or(|x| x == e.name))
        .flat_map(|e| e.variants.iter().map(move |v| (e, v)))
        .filter(|(_, v)| v.name == variant)
        .collect();
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => {
            let known: Vec<String> = config
                .experiments
                .iter()
                .filter(|e| experiment.is_none_or(|x| x == e.name))
                .flat_map(|e| {
                    e.variants
                        .iter()
                        .map(move |v| format!("{}/{}", e.name, v.name))
                })
                .collect();
            Err(Error::NotFound {
                what: "variant",
                name: match experiment {
                    Some(e) => format!("{e}/{variant}"),
                    None => variant.to_string(),
                },
                hint: Some(if known.is_empty() {
                    format!(
                        "the ACTIVE version runs no experiment `{}`",
                        experiment.unwrap_or("")
                    )
                } else {
                    format!("variants (experiment/variant): {}", known.join(", "))
                }),
            })
        }
        many => Err(Error::invalid(
            "variant",
            format!(
                "experiments {} each have a variant `{variant}`",
                many.iter()
                    .map(|(e, _)| format!("`{}`", e.name))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )
        .with_hint("name one with --experiment")),
    }
}

/// A new version of the model file `text` (the ACTIVE one's with a variant written in),
/// deployed from the ACTIVE version's artifacts.
async fn make_version(
    registry: &Registry,
    config: ModelConfig,
    active: u32,
    text: String,
    why: &str,
) -> Result<Promoted> {
    let mut next = crate::config::parse(&text, &config.file, &config.base_dir)
        .map_err(|e| Error::Internal(format!("the promoted model file does not parse: {e}")))?;
    next.data_roots = config.data_roots.clone();
    let Some(_writer) = registry.try_writer(&config.name)? else {
        return Err(Error::invalid(
            "model.name",
            format!(
                "model `{}` is being changed by another run; wait for it to end",
                config.name
            ),
        ));
    };
    // A run making a version holds the writer, so none is being made now. ACTIVE was read before
    // the writer was taken: a rollback meanwhile must not be replaced by a version of the old one.
    if registry.active_version(&config.name)? != Some(active) {
        return Err(Error::invalid(
            "version",
            format!(
                "ACTIVE of `{}` moved from version {active} meanwhile; nothing changed",
                config.name
            ),
        )
        .with_hint("run the command again"));
    }
    let run = Arc::new(registry.begin(&config.name, &text, why)?);
    match super::redeploy(run.clone(), Arc::new(next), active, false).await {
        Ok(outcome) => Ok(Promoted::Made {
            from: active,
            version: outcome.version,
            status: outcome.status,
            text,
        }),
        Err(e) => {
            run.fail(&e);
            Err(e)
        }
    }
}

/// The model file `config` came from, with variant `variant` of `experiment` written in and
/// the experiment removed. Comments do not survive (the file is read into YAML values and
/// written again).
fn rewrite(config: &ModelConfig, experiment: &str, variant: &str) -> Result<String> {
    use serde_yaml::Value;
    let internal = |e: serde_yaml::Error| Error::Internal(format!("rewriting the model file: {e}"));
    let e = config
        .experiments
        .iter()
        .find(|e| e.name == experiment)
        .ok_or_else(|| Error::Internal(format!("no experiment `{experiment}`")))?;
    let raw = config
        .serving
        .experiments
        .iter()
        .find(|e| e.name == experiment)
        .and_then(|e| e.variants.iter().find(|v| v.name == variant))
        .ok_or_else(|| Error::Internal(format!("no variant `{experiment}/{variant}`")))?;
    let mut doc: Value = serde_yaml::from_str(&config.text).map_err(internal)?;
    let root = doc
        .as_mapping_mut()
        .ok_or_else(|| Error::Internal("the model file is not a mapping".into()))?;
    if let Some(vm) = &raw.value_model {
        root.insert(
            Value::from("value_model"),
            serde_yaml::to_value(vm).map_err(internal)?,
        );
    }
    if let Some(with) = &raw.query {
        let queries = root
            .get_mut("queries")
            .and_then(Value::as_mapping_mut)
            .ok_or_else(|| Error::Internal("the model file has no queries".into()))?;
        let body = queries
            .get(with.as_str())
            .cloned()
            .ok_or_else(|| Error::Internal(format!("no saved query `{with}`")))?;
        for target in &e.applies_to {
            queries.insert(Value::from(target.as_str()), body.clone());
        }
    }
    if let Some(serving) = root.get_mut("serving").and_then(Value::as_mapping_mut) {
        if let Some(list) = serving
            .get_mut("experiments")
            .and_then(Value::as_sequence_mut)
        {
            list.retain(|x| x.get("name").and_then(Value::as_str) != Some(experiment));
            if list.is_empty() {
                serving.remove("experiments");
            }
        }
    }
    serde_yaml::to_string(&doc).map_err(internal)
}
