//! One version of a model as `view-model` and `GET /models/{name}/versions/{version}` show it:
//! the model's versions, the version's log, manifest and evaluation report.

use feed_engine::eval::EvalReport;
use feed_engine::serving::artifacts::{self, Manifest};
use feed_engine::{Registry, VersionInfo};

pub struct Detail {
    pub model: String,
    pub versions: Vec<VersionInfo>,
    pub active: Option<u32>,
    /// The version shown.
    pub detail: VersionInfo,
    pub manifest: Option<Manifest>,
    pub report: Option<EvalReport>,
    /// The experiments of the version shown (`serving.experiments` of its file).
    pub experiments: Vec<feed_engine::config::experiments::Experiment>,
    /// The shadow: the version `SHADOW` names (else the version shown, if it was shadowed),
    /// whether the pointer names it, and every server's measurements of it added up.
    pub shadow: Option<Shadow>,
}

pub struct Shadow {
    pub version: u32,
    pub pointer: Option<feed_engine::registry::ShadowPointer>,
    pub stats: Option<feed_engine::registry::ShadowStats>,
}

/// Reads `version` of `model`: by default the version that serves, or the newest when none does
/// yet. Only the small files are read (on object storage each read is a request).
pub fn read(registry: &Registry, model: &str, version: Option<u32>) -> feed_engine::Result<Detail> {
    let versions = registry.versions(model)?;
    let active = registry.active_version(model)?;
    let version = version.or(active);
    // From the listing already read; the registry's lookup gives the not-found error.
    let wanted = version.or_else(|| versions.last().map(|v| v.version));
    let detail = match versions.iter().find(|v| Some(v.version) == wanted) {
        Some(v) => v.clone(),
        None => registry.version(model, version)?,
    };
    let dir = registry.version_files(
        model,
        detail.version,
        &[artifacts::MANIFEST, artifacts::METRICS, "model.yaml"],
    )?;
    let experiments = feed_engine::config::ModelConfig::load_stored(&dir)
        .map(|c| c.experiments)
        .unwrap_or_default();
    let pointer = registry.shadow(model)?;
    let shadowed = pointer.as_ref().map_or(detail.version, |p| p.version);
    let stats = registry.shadow_stats(model, shadowed)?;
    let shadow = (pointer.is_some() || stats.is_some()).then_some(Shadow {
        version: shadowed,
        pointer,
        stats,
    });
    Ok(Detail {
        model: model.to_string(),
        experiments,
        shadow,
        report: artifacts::read_report(&dir)?,
        manifest: artifacts::read_manifest(&dir).ok(),
        versions,
        active,
        detail,
    })
}

impl From<&Detail> for crate::wire::ModelDetail {
    fn from(d: &Detail) -> Self {
        Self {
            name: d.model.clone(),
            active_version: d.active,
            versions: d.versions.iter().map(crate::wire::Version::from).collect(),
            version: d.detail.version,
            status: d.detail.status.to_string(),
            message: d.detail.message.clone(),
            log: d
                .detail
                .log
                .iter()
                .map(crate::wire::LogLine::from)
                .collect(),
            primary_policy: d.manifest.as_ref().map(|m| m.primary_policy.clone()),
            vector_indexes: d.manifest.as_ref().map(|m| {
                m.indexes
                    .iter()
                    .map(|(k, v)| (k.clone(), crate::wire::VectorIndex::from(v)))
                    .collect()
            }),
            metrics: d.report.as_ref().map(crate::wire::Evaluation::from),
            experiments: d
                .experiments
                .iter()
                .map(crate::wire::ExperimentView::from)
                .collect(),
            shadow: d.shadow.as_ref().map(crate::wire::ShadowReport::from),
        }
    }
}
