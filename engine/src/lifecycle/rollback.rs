//! `feedctl rollback`: ACTIVE back to an earlier complete version, checked to load first.

use crate::error::{Error, Result};
use crate::registry::{Move, Registry};
use crate::serving::Snapshot;

/// Moves ACTIVE of `model` to `to` (by default the newest version older than the ACTIVE one
/// that served) once that version has loaded here, so that servers will load it too; a version
/// this build cannot read is refused before anything moves, and so is a rollback while a newer
/// version is being made (it would replace the rolled-back one), unless `force`. Returns the
/// move made.
#[tracing::instrument(skip(registry))]
pub fn rollback(registry: &Registry, model: &str, to: Option<u32>, force: bool) -> Result<Move> {
    move_to(registry, model, to, force, |m| {
        format!("rollback: ACTIVE moved from version {} to {}", m.from, m.to)
    })
}

/// The one way ACTIVE moves by hand (`rollback`, `promote`): the target checked
/// ([`Registry::rollback_target`]) and loaded, then the pointer moved with `why(move)` in both
/// logs. A shadow that names the new ACTIVE version ends: it would be compared with itself.
pub(super) fn move_to(
    registry: &Registry,
    model: &str,
    to: Option<u32>,
    force: bool,
    why: impl Fn(&Move) -> String,
) -> Result<Move> {
    let m = registry.rollback_target(model, to, force)?;
    let dir = registry.materialize(model, m.to)?;
    if let Err(e) = Snapshot::load(&dir) {
        return Err(Error::invalid(
            "version",
            format!(
                "version {} of `{model}` does not load ({e}); ACTIVE stays at {}",
                m.to, m.from
            ),
        )
        .with_hint("choose another version with --version; see view-model"));
    }
    registry.move_active(&m, &why(&m))?;
    if registry.shadow(model)?.is_some_and(|p| p.version == m.to) {
        registry.clear_shadow(model)?;
    }
    Ok(m)
}
