//! Semantic checks: raw structs → a validated [`ModelConfig`].

// Config errors are a cold path that ends the command; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use feed_connectors::ConnectorConfig;

use super::raw::{
    DefaultParam, EventsConfig, PolicyConfig, RawFetch, RawModelFile, SavedQuery, ServingConfig,
    TrainingConfig, ValueModelConfig,
};
use super::{FitConfig, Locations, SequenceLoss};
use crate::error::{did_you_mean, ConfigError};

/// A model file that passed every check that needs no data. Immutable; stored with each version.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub name: String,
    pub description: String,
    /// The file as the user named it, for error messages.
    pub file: String,
    /// The folder relative paths resolve against.
    pub base_dir: PathBuf,
    /// The fetch's memory and time budget.
    pub fetch_limits: FetchLimits,
    /// The Ballista scheduler the fetch runs on (`fetch.engine: ballista`), its reference
    /// expanded; `None` to fetch in this process.
    pub fetch_cluster: Option<String>,
    /// The most memory a policy's training may be estimated to need (`training.memory_limit`;
    /// by default half of the machine's).
    pub training_memory: u64,
    /// Folders besides `base_dir` that file connectors may read (`--data-root`,
    /// `FEED_DATA_ROOTS`); not part of the file, nor of its training key.
    pub data_roots: Vec<PathBuf>,
    /// The exact text, stored with each version.
    pub text: String,
    pub connectors: Vec<ConnectorConfig>,
    pub fetch: RawFetch,
    pub policies: Vec<PolicyConfig>,
    /// The policies as the file declares them, once TUNING has put each searched policy's kept
    /// settings in `policies`: the training key stays the file's, so that a serving-only update
    /// reuses the tuned version.
    pub declared_policies: Option<Vec<PolicyConfig>>,
    pub training: TrainingConfig,
    /// The value model with its outputs resolved; `None` when the file declares none (then
    /// the primary policy ranks alone).
    pub value_model: Option<ValueModel>,
    pub queries: BTreeMap<String, Saved>,
    pub serving: ServingConfig,
    /// `serving.experiments`, checked.
    pub experiments: Vec<super::experiments::Experiment>,
    pub events: EventsConfig,
    locations: Locations,
}

/// The value model, resolved: weights over policy outputs by their canonical names, or an
/// expression (bound against the data's names by `validate` and when a version loads).
#[derive(Debug, Clone)]
pub struct ValueModel {
    pub combine: Combine,
    /// Item column → strength in [0, 1]: value × (1 − strength × item.column).
    pub demotions: BTreeMap<String, f64>,
}

#[derive(Debug, Clone)]
pub enum Combine {
    /// Σ weight × output, in the file's key order.
    Weights(Vec<Weight>),
    /// A FeedQL score expression (parsed and checked).
    Expression(String),
}

/// One term of a weighted value model: a policy output and its weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    /// The output's canonical name (`als`, `ranker.like`).
    pub output: String,
    pub policy: String,
    /// The head's index among the policy's outputs.
    pub head: usize,
    pub weight: f64,
}

/// How much memory and time the fetch may take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FetchLimits {
    pub memory_bytes: u64,
    pub timeout: std::time::Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            memory_bytes: crate::util::memory::default_budget(),
            timeout: std::time::Duration::from_secs(3600),
        }
    }
}

/// `512MB`, `2GB`, `1.5GiB`, `1000000` (bytes) in bytes.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().ok()?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * scale;
    (1.0..1e18).contains(&bytes).then_some(bytes as u64)
}

/// A `memory_limit` setting at `path` in bytes (at least 1 MiB).
fn memory_setting(cfg: &ModelConfig, path: &str, text: &str) -> Result<u64, ConfigError> {
    let bytes = parse_bytes(text).ok_or_else(|| {
        cfg.error_at(
            path,
            format!("`{text}` is not an amount of memory"),
            Some("write a number and a unit: `512MB`, `2GB`, `1.5GiB`".into()),
        )
    })?;
    if bytes < 1 << 20 {
        return Err(cfg.error_at(
            path,
            format!("`{text}` is below 1 MiB, too little to work in"),
            None,
        ));
    }
    Ok(bytes)
}

fn resolve_fetch_limits(cfg: &ModelConfig) -> Result<FetchLimits, ConfigError> {
    let mut limits = FetchLimits::default();
    if let Some(text) = &cfg.fetch.memory_limit {
        limits.memory_bytes = memory_setting(cfg, "fetch.memory_limit", text)?;
    }
    if let Some(s) = cfg.fetch.timeout_seconds {
        if s == 0 {
            return Err(cfg.error_at("fetch.timeout_seconds", "must be at least 1", None));
        }
        limits.timeout = std::time::Duration::from_secs(s);
    }
    Ok(limits)
}

/// `fetch.engine` and `fetch.scheduler`: the scheduler's URL when the fetch runs on Ballista.
fn resolve_fetch_cluster(cfg: &ModelConfig) -> Result<Option<String>, ConfigError> {
    use super::raw::FetchEngine;
    let engine = cfg.fetch.engine.unwrap_or(FetchEngine::Local);
    let Some(written) = &cfg.fetch.scheduler else {
        return match engine {
            FetchEngine::Local => Ok(None),
            FetchEngine::Ballista => Err(cfg.error_at(
                "fetch.engine",
                "`ballista` needs `fetch.scheduler`, the scheduler's address",
                Some("add `scheduler: df://host:50050` (or `${BALLISTA_SCHEDULER}`)".into()),
            )),
        };
    };
    if engine == FetchEngine::Local {
        return Err(cfg.error_at(
            "fetch.scheduler",
            "a scheduler is only used with `engine: ballista`",
            Some("add `engine: ballista`, or remove `scheduler`".into()),
        ));
    }
    let url = match written.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(name) => std::env::var(name).map_err(|_| {
            cfg.error_at(
                "fetch.scheduler",
                format!("the environment variable `{name}` is not set"),
                Some(format!("export {name}=df://host:50050")),
            )
        })?,
        None => written.clone(),
    };
    let address = url.strip_prefix("df://").unwrap_or_default();
    let port_ok = address
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !port_ok {
        return Err(cfg.error_at(
            "fetch.scheduler",
            format!("`{url}` is not a scheduler address"),
            Some("write df://host:port, e.g. df://127.0.0.1:50050".into()),
        ));
    }
    // The executors open the sources themselves: only files (paths they share, or object
    // storage) travel in a plan.
    for (i, c) in cfg.connectors.iter().enumerate() {
        if let ConnectorConfig::File(f) = c {
            if feed_connectors::StorageRoot::is_url(&f.path) {
                return Err(cfg.error_at(
                    &format!("connectors[{i}].path"),
                    "object storage is not read on a Ballista cluster yet (its executors would need the bucket's credentials)",
                    Some("use a folder every executor mounts, or `engine: local`".into()),
                ));
            }
        }
        if !matches!(c, ConnectorConfig::File(_)) {
            return Err(cfg.error_at(
                &format!("connectors[{i}].type"),
                "a Ballista cluster reads only `type: file` connectors (its executors open the files themselves)",
                Some("fetch from databases with `engine: local`, or export the tables to files the executors can read".into()),
            ));
        }
    }
    Ok(Some(url))
}

/// A saved query: its text (parsed and checked), the defaults of its parameters, and where the
/// text is in the model file (for located errors).
#[derive(Debug, Clone)]
pub struct Saved {
    pub text: String,
    pub defaults: BTreeMap<String, DefaultParam>,
    pub path: String,
}

impl ModelConfig {
    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            path: String::new(),
            message: format!("cannot read the model file: {e}"),
            hint: Some("check the --file path".into()),
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        parse(&text, &file, &base_dir)
    }

    /// The model file stored with a version in `dir` (its relative paths resolve there; the
    /// version's artifacts are what serve, so no source is read through them).
    pub fn load_stored(dir: &Path) -> crate::error::Result<Self> {
        let path = dir.join("model.yaml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| crate::error::Error::storage(format!("reading {}", path.display()), e))?;
        parse(&text, &path.display().to_string(), dir).map_err(|e| {
            crate::error::Error::Internal(format!("stored model file no longer parses: {e}"))
        })
    }

    /// An error about the field at `path`, located in the file.
    pub fn error_at(
        &self,
        path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        let pos = self.locations.value(path);
        ConfigError {
            file: self.file.clone(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            path: path.to_string(),
            message: message.into(),
            hint,
        }
    }

    /// An error inside the text value at `path` (a saved query), located at the error's own
    /// line and column within the YAML file: block scalars (`|`) start on the next line.
    pub fn error_in_text(&self, path: &str, value: &str, e: &feed_lang::QueryError) -> ConfigError {
        let mut err = self.error_at(path, e.message.clone(), e.hint.clone());
        let (qline, qcol) = e.span.line_col(value);
        if let (Some(line), Some(col)) = (err.line, err.column) {
            // The value's position is where its text starts: for a block scalar (`key: |`) the
            // first content line, whose indentation every content line shares.
            let key_line = self.locations.key(path).map(|p| p.0).unwrap_or(line);
            let key_text = self.text.lines().nth(key_line - 1).unwrap_or("");
            let after_colon = key_text
                .split_once(':')
                .map(|(_, v)| v.trim())
                .unwrap_or("");
            let block = after_colon.starts_with('|') || after_colon.starts_with('>');
            let first = self.text.lines().nth(line - 1).unwrap_or("");
            let quoted = first
                .chars()
                .nth(col - 1)
                .is_some_and(|c| c == '\'' || c == '"');
            err.line = Some(line + qline - 1);
            err.column = Some(match (block, qline) {
                (true, _) => col - 1 + qcol,
                (false, 1) => col + usize::from(quoted) + qcol - 1,
                (false, _) => qcol,
            });
        }
        err
    }

    /// The same file, allowed to read data under `roots` too.
    pub fn with_data_roots(mut self, roots: Vec<PathBuf>) -> Self {
        self.data_roots = roots;
        self
    }

    pub fn policy(&self, name: &str) -> Option<&PolicyConfig> {
        self.policies.iter().find(|p| p.name() == name)
    }
}

/// Parses and checks model-file text. `file` names it in errors; relative paths resolve
/// against `base_dir`.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<ModelConfig, ConfigError> {
    let blank = |l: &str| l.trim().is_empty() || l.trim_start().starts_with('#');
    if text.lines().all(blank) {
        return Err(ConfigError {
            file: file.to_string(),
            line: Some(1),
            column: Some(1),
            path: String::new(),
            message: "the model file is empty".into(),
            hint: Some(
                "a model file is a mapping with `model:`, `connectors:`, `fetch:` and `policies:` (see spec/config.md; `feedctl synth` writes one)".into(),
            ),
        });
    }
    let locations = Locations::index(text);
    let raw: RawModelFile =
        serde_yaml::from_str(text).map_err(|e| serde_error(&e, text, file, &locations))?;
    let mut cfg = ModelConfig {
        name: raw.model.name,
        description: raw.model.description,
        file: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        data_roots: Vec::new(),
        fetch_limits: FetchLimits::default(),
        fetch_cluster: None,
        training_memory: crate::util::memory::default_budget(),
        text: text.to_string(),
        connectors: raw.connectors,
        fetch: raw.fetch,
        policies: raw.policies,
        declared_policies: None,
        training: raw.training,
        value_model: None,
        queries: BTreeMap::new(),
        serving: raw.serving,
        experiments: Vec::new(),
        events: raw.events,
        locations,
    };
    check(&cfg)?;
    cfg.fetch_limits = resolve_fetch_limits(&cfg)?;
    cfg.fetch_cluster = resolve_fetch_cluster(&cfg)?;
    if let Some(text) = &cfg.training.memory_limit {
        cfg.training_memory = memory_setting(&cfg, "training.memory_limit", text)?;
    }
    cfg.value_model = raw
        .value_model
        .as_ref()
        .map(|vm| resolve_value_model(&cfg, vm, "value_model"))
        .transpose()?;
    cfg.queries = resolve_queries(&cfg, raw.queries)?;
    cfg.experiments = super::experiments::resolve(&cfg)?;
    Ok(cfg)
}

/// Event types are names; interactions are among the accepted types.
fn check_events(cfg: &ModelConfig) -> Result<(), ConfigError> {
    let e = &cfg.events;
    for (i, t) in e.types.iter().enumerate() {
        check_name(cfg, &format!("events.types[{i}]"), t)?;
    }
    if let Some(r) = &e.retention {
        if crate::util::window::window_seconds(r).is_none() {
            return Err(cfg.error_at(
                "events.retention",
                format!("`{r}` is not a duration"),
                Some(crate::util::window::WINDOW_HINT.into()),
            ));
        }
    }
    for (i, t) in e.interactions.iter().flatten().enumerate() {
        if !e.accepts(t) {
            let hint = did_you_mean(t, e.types.iter().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("add `{t}` to `events.types`"));
            return Err(cfg.error_at(
                &format!("events.interactions[{i}]"),
                format!("`{t}` is not an accepted event type"),
                Some(hint),
            ));
        }
    }
    Ok(())
}

/// Whether `name` is a valid identifier: `[a-z0-9_]+`, at most 64 characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub(super) fn check_name(cfg: &ModelConfig, path: &str, name: &str) -> Result<(), ConfigError> {
    if is_valid_name(name) {
        return Ok(());
    }
    let suggestion: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Err(cfg.error_at(
        path,
        format!("`{name}` is not a valid name: use lowercase letters, digits and `_` (at most 64)"),
        (!suggestion.is_empty()).then(|| format!("try `{suggestion}`")),
    ))
}

fn check(cfg: &ModelConfig) -> Result<(), ConfigError> {
    check_name(cfg, "model.name", &cfg.name)?;
    check_events(cfg)?;

    if cfg.connectors.is_empty() {
        return Err(cfg.error_at(
            "connectors",
            "declares no connector",
            Some("add a `type: file` connector".into()),
        ));
    }
    let mut ids = HashSet::new();
    for (i, c) in cfg.connectors.iter().enumerate() {
        let path = format!("connectors[{i}].id");
        check_name(cfg, &path, c.id())?;
        if !ids.insert(c.id()) {
            return Err(cfg.error_at(
                &path,
                format!("connector id `{}` is used twice", c.id()),
                Some("ids must be unique".into()),
            ));
        }
    }

    for (field, sql) in [
        ("events", Some(&cfg.fetch.events)),
        ("items", cfg.fetch.items.as_ref()),
        ("users", cfg.fetch.users.as_ref()),
        ("impressions", cfg.fetch.impressions.as_ref()),
    ] {
        if sql.is_some_and(|s| s.trim().is_empty()) {
            return Err(cfg.error_at(
                &format!("fetch.{field}"),
                "is empty",
                Some("write one SELECT statement".into()),
            ));
        }
    }

    if cfg.policies.is_empty() {
        return Err(cfg.error_at(
            "policies",
            "declares no policy",
            Some("add `- {name: als, type: als}`".into()),
        ));
    }
    let mut names = HashSet::new();
    for (i, p) in cfg.policies.iter().enumerate() {
        let path = format!("policies[{i}]");
        check_name(cfg, &format!("{path}.name"), p.name())?;
        if !names.insert(p.name()) {
            return Err(cfg.error_at(
                &format!("{path}.name"),
                format!("policy name `{}` is used twice", p.name()),
                Some("names must be unique".into()),
            ));
        }
        check_policy(cfg, &path, p)?;
        if let Some(t) = p.tuning() {
            check_tuning(cfg, &path, p, t)?;
        }
    }

    if let Some(p) = &cfg.serving.policy {
        if cfg.policy(p).is_none() {
            return Err(unknown_policy(cfg, "serving.policy", p));
        }
    }
    if cfg.serving.max_limit == 0 || cfg.serving.max_limit > 100_000 {
        return Err(cfg.error_at("serving.max_limit", "must be between 1 and 100000", None));
    }
    let index = &cfg.serving.index;
    if index.partitions.is_some_and(|p| p == 0 || p > 65_536) {
        return Err(cfg.error_at(
            "serving.index.partitions",
            "must be between 1 and 65536",
            Some("leave it out to use about the square root of the number of items".into()),
        ));
    }
    if index.nprobes == Some(0) {
        return Err(cfg.error_at(
            "serving.index.nprobes",
            "must be at least 1",
            Some("leave it out to tune it to serving.index.target_recall".into()),
        ));
    }
    if index.refine_factor == 0 || index.refine_factor > 100 {
        return Err(cfg.error_at(
            "serving.index.refine_factor",
            "must be between 1 and 100",
            None,
        ));
    }
    if !(index.target_recall > 0.0 && index.target_recall <= 1.0) {
        return Err(cfg.error_at(
            "serving.index.target_recall",
            "must be in (0, 1]",
            Some("0.97 gives about 0.95 on queries the tuning did not see".into()),
        ));
    }
    Ok(())
}

fn unknown_policy(cfg: &ModelConfig, path: &str, name: &str) -> ConfigError {
    let hint = did_you_mean(name, cfg.policies.iter().map(|p| p.name()))
        .map(|s| format!("did you mean `{s}`?"))
        .or_else(|| {
            Some(format!(
                "declared policies: {}",
                cfg.policies
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        });
    cfg.error_at(path, format!("no policy is named `{name}`"), hint)
}

/// A policy's `tuning:`: the space of each field, and every setting it can take checked as if the
/// file had said it (a range by its two ends).
fn check_tuning(
    cfg: &ModelConfig,
    path: &str,
    p: &PolicyConfig,
    t: &super::tuning::TuningConfig,
) -> Result<(), ConfigError> {
    use super::tuning::{SearchSpace, TuningMethod, MAX_TRIALS};
    let at = format!("{path}.tuning");
    if t.search.is_empty() {
        return Err(cfg.error_at(
            &format!("{at}.search"),
            "searches no field",
            Some(format!("e.g. `search: {{{}}}`", example_search(p))),
        ));
    }
    for (field, space) in &t.search {
        let here = format!("{at}.search.{field}");
        if matches!(field.as_str(), "name" | "type" | "tuning") {
            return Err(cfg.error_at(&here, format!("`{field}` cannot be searched"), None));
        }
        if let Some(problem) = space.problem() {
            return Err(cfg.error_at(&here, problem, None));
        }
        if t.method == TuningMethod::Grid && matches!(space, SearchSpace::Range(_)) {
            return Err(cfg.error_at(
                &here,
                "a grid takes lists of values",
                Some("list the values, or use `method: random` to draw from a range".into()),
            ));
        }
        for value in space.probes() {
            let settings = std::iter::once((field.clone(), value.clone())).collect();
            let tried = super::tuning::apply(p, &settings).map_err(|e| {
                let e = plain_words(&e);
                let hint = e
                    .contains("unknown field")
                    .then(|| format!("the fields of a `{}` policy can be searched", p.kind()));
                cfg.error_at(&here, format!("{value} does not fit: {e}"), hint)
            })?;
            check_policy(cfg, path, &tried)
                .map_err(|e| cfg.error_at(&here, format!("{value}: {}", e.message), e.hint))?;
        }
    }
    // Each field alone is fine; the trials themselves (fixed by the seed) combine fields, and a
    // draw from a range may land where neither end does (`heads` that do not divide `hidden`).
    if t.trial_count() <= MAX_TRIALS {
        for (n, trial) in t.trials(cfg.training.seed).iter().enumerate() {
            let checked = super::tuning::apply(p, trial)
                .map_err(|e| plain_words(&e))
                .and_then(|tried| check_policy(cfg, path, &tried).map_err(|e| e.message));
            if let Err(problem) = checked {
                let settings: Vec<String> = trial.iter().map(|(k, v)| format!("{k}={v}")).collect();
                return Err(cfg.error_at(
                    &format!("{at}.search"),
                    format!(
                        "trial {} ({}) cannot train: {problem}",
                        n + 1,
                        settings.join(" ")
                    ),
                    Some("narrow the ranges or lists so that every combination is valid".into()),
                ));
            }
        }
    }
    let count = t.trial_count();
    match t.method {
        TuningMethod::Grid if count > MAX_TRIALS => Err(cfg.error_at(
            &format!("{at}.search"),
            format!("the grid has {count} combinations, more than {MAX_TRIALS}"),
            Some("list fewer values, or use `method: random` with `trials`".into()),
        )),
        TuningMethod::Grid if t.trials.is_some_and(|n| n < count) => Err(cfg.error_at(
            &format!("{at}.trials"),
            format!("a grid runs every combination ({count}); `trials` cannot be fewer"),
            Some("drop `trials`, or use `method: random`".into()),
        )),
        TuningMethod::Random if count == 0 || count > MAX_TRIALS => Err(cfg.error_at(
            &format!("{at}.trials"),
            format!("must be 1 to {MAX_TRIALS}"),
            None,
        )),
        _ => Ok(()),
    }
}

/// A search a policy of `p`'s kind could start from, for hints.
fn example_search(p: &PolicyConfig) -> &'static str {
    match p {
        PolicyConfig::Als(_) => "factors: [32, 64, 128], regularization: {log_uniform: [0.001, 1]}",
        PolicyConfig::Popular(_) => "half_life_days: [7, 30, 90]",
        _ => "learning_rate: {log_uniform: [0.0001, 0.01]}, dropout: [0.1, 0.3]",
    }
}

fn check_policy(cfg: &ModelConfig, path: &str, p: &PolicyConfig) -> Result<(), ConfigError> {
    let range = |field: &str, ok: bool, what: &str| -> Result<(), ConfigError> {
        if ok {
            Ok(())
        } else {
            Err(cfg.error_at(&format!("{path}.{field}"), format!("must be {what}"), None))
        }
    };
    match p {
        PolicyConfig::Popular(c) => {
            if let Some(w) = c.window_days {
                range(
                    "window_days",
                    w.is_finite() && w > 0.0,
                    "a positive number of days",
                )?;
            }
            if let Some(h) = c.half_life_days {
                range(
                    "half_life_days",
                    h.is_finite() && h > 0.0,
                    "a positive number of days",
                )?;
            }
        }
        PolicyConfig::Als(c) => {
            range(
                "factors",
                (1..=1024).contains(&c.factors),
                "between 1 and 1024",
            )?;
            range(
                "regularization",
                c.regularization.is_finite() && c.regularization >= 0.0,
                "a number >= 0",
            )?;
            range(
                "alpha",
                c.alpha.is_finite() && c.alpha > 0.0,
                "a number > 0",
            )?;
            range(
                "iterations",
                (1..=1000).contains(&c.iterations),
                "between 1 and 1000",
            )?;
            range(
                "cg_steps",
                (1..=64).contains(&c.cg_steps),
                "between 1 and 64",
            )?;
        }
        PolicyConfig::Sasrec(c) => {
            range(
                "max_seq_len",
                (2..=4096).contains(&c.max_seq_len),
                "between 2 and 4096",
            )?;
            range(
                "hidden",
                (1..=4096).contains(&c.hidden),
                "between 1 and 4096",
            )?;
            range("layers", (1..=64).contains(&c.layers), "between 1 and 64")?;
            range("heads", (1..=64).contains(&c.heads), "between 1 and 64")?;
            if c.hidden % c.heads != 0 {
                return Err(cfg.error_at(
                    &format!("{path}.heads"),
                    format!("{} heads do not divide hidden = {}", c.heads, c.hidden),
                    Some("pick a number of heads that divides `hidden`".into()),
                ));
            }
            range(
                "dropout",
                (0.0..0.95).contains(&c.dropout),
                "at least 0 and below 0.95",
            )?;
            match (c.loss, c.negatives) {
                (SequenceLoss::SampledSoftmax, Some(n)) => range(
                    "negatives",
                    (1..=1_000_000).contains(&n),
                    "between 1 and 1000000",
                )?,
                (SequenceLoss::SampledSoftmax, None) => {}
                (_, Some(_)) => {
                    return Err(cfg.error_at(
                        &format!("{path}.negatives"),
                        "only `loss: sampled_softmax` samples negatives",
                        Some("remove `negatives` or set `loss: sampled_softmax`".into()),
                    ))
                }
                _ => {}
            }
            check_fit(&c.fit(), &range)?;
        }
        PolicyConfig::TwoTower(c) => {
            range(
                "hidden",
                (1..=4096).contains(&c.hidden),
                "between 1 and 4096",
            )?;
            range("history", c.history <= 4096, "at most 4096")?;
            range(
                "temperature",
                c.temperature.is_finite() && c.temperature > 0.0 && c.temperature <= 100.0,
                "a number > 0 and at most 100",
            )?;
            range("negatives", c.negatives <= 65_536, "at most 65536")?;
            range(
                "id_dropout",
                (0.0..1.0).contains(&c.id_dropout),
                "at least 0 and below 1",
            )?;
            check_features(cfg, path, &c.user_features, &c.item_features)?;
            check_fit(&c.fit(), &range)?;
        }
        PolicyConfig::MultiTask(c) => {
            super::ranker::check(cfg, path, c, &range)?;
            check_fit(&c.fit(), &range)?;
        }
        PolicyConfig::Onnx(c) => super::onnx::check(cfg, path, c)?,
    }
    Ok(())
}

/// A policy's `user_features` and `item_features` each name a column once.
pub(super) fn check_features(
    cfg: &ModelConfig,
    path: &str,
    user_features: &[super::FeatureSpec],
    item_features: &[super::FeatureSpec],
) -> Result<(), ConfigError> {
    for (field, specs) in [
        ("user_features", user_features),
        ("item_features", item_features),
    ] {
        check_listed_once(
            cfg,
            &format!("{path}.{field}"),
            "feature ",
            specs.iter().map(|f| f.column()),
        )?;
    }
    Ok(())
}

/// Each of `names` (the list at `path`) appears once; `what` prefixes the name in the message.
pub(super) fn check_listed_once<'a>(
    cfg: &ModelConfig,
    path: &str,
    what: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, name) in names.into_iter().enumerate() {
        if !seen.insert(name) {
            return Err(cfg.error_at(
                &format!("{path}[{i}]"),
                format!("{what}`{name}` is listed twice"),
                None,
            ));
        }
    }
    Ok(())
}

/// The optimiser settings every neural policy shares.
fn check_fit(
    fit: &FitConfig,
    range: &dyn Fn(&str, bool, &str) -> Result<(), ConfigError>,
) -> Result<(), ConfigError> {
    range(
        "epochs",
        (1..=100_000).contains(&fit.epochs),
        "between 1 and 100000",
    )?;
    range("patience", fit.patience <= 100_000, "at most 100000")?;
    range(
        "batch_size",
        (1..=1_000_000).contains(&fit.batch_size),
        "between 1 and 1000000",
    )?;
    range(
        "learning_rate",
        fit.learning_rate.is_finite() && fit.learning_rate > 0.0 && fit.learning_rate <= 10.0,
        "a number > 0 and at most 10",
    )?;
    range(
        "weight_decay",
        fit.weight_decay.is_finite() && fit.weight_decay >= 0.0,
        "a number >= 0",
    )?;
    range(
        "epsilon",
        fit.epsilon.is_finite() && fit.epsilon > 0.0,
        "a number > 0",
    )?;
    range(
        "learning_rate_decay",
        fit.learning_rate_decay.is_finite()
            && fit.learning_rate_decay > 0.0
            && fit.learning_rate_decay <= 1.0,
        "a number > 0 and at most 1",
    )
}

/// Checks each saved query (name, text, parameter defaults) and resolves it.
fn resolve_queries(
    cfg: &ModelConfig,
    queries: BTreeMap<String, SavedQuery>,
) -> Result<BTreeMap<String, Saved>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, saved) in queries {
        let text = saved.text();
        let path = match &saved {
            SavedQuery::Text(_) => format!("queries.{name}"),
            SavedQuery::WithDefaults(_) => format!("queries.{name}.query"),
        };
        check_name(cfg, &path, &name)?;
        if text.trim().is_empty() {
            return Err(cfg.error_at(&path, "is empty", Some("write a FeedQL query".into())));
        }
        let options = feed_lang::CheckOptions {
            max_limit: cfg.serving.max_limit as u64,
            ..Default::default()
        };
        if let Err(e) = feed_lang::parse_with(text, &options) {
            return Err(cfg.error_in_text(&path, text, &e));
        }
        // Defaults must belong to a parameter the query uses.
        if let Some(defaults) = saved.defaults() {
            for key in defaults.keys() {
                if !text.contains(&format!("${key}")) {
                    return Err(cfg.error_at(
                        &format!("queries.{name}.params.{key}"),
                        format!("the query has no parameter `${key}`"),
                        Some("remove it, or use it in the query".into()),
                    ));
                }
            }
        }
        let (text, defaults) = match saved {
            SavedQuery::Text(t) => (t, BTreeMap::new()),
            SavedQuery::WithDefaults(q) => (q.query, q.params),
        };
        out.insert(
            name,
            Saved {
                text,
                defaults,
                path,
            },
        );
    }
    Ok(out)
}

/// Checks the value model and resolves its weights to policy outputs.
/// `at` is where it is declared: `value_model`, or an experiment variant's.
pub(super) fn resolve_value_model(
    cfg: &ModelConfig,
    vm: &ValueModelConfig,
    at: &str,
) -> Result<ValueModel, ConfigError> {
    let combine = match (&vm.weights, &vm.expression) {
        (Some(_), Some(_)) => {
            return Err(cfg.error_at(
                at,
                "has both `weights` and `expression`",
                Some("keep one of them".into()),
            ))
        }
        (None, None) => {
            return Err(cfg.error_at(
                at,
                "needs `weights` or `expression`",
                Some("e.g. `weights: {als: 1}`".into()),
            ))
        }
        (None, Some(text)) => {
            let path = &format!("{at}.expression");
            let e = feed_lang::parse_score(text).map_err(|e| cfg.error_in_text(path, text, &e))?;
            // Names other than item./user. columns are policy outputs: check them now, not at
            // the first query.
            let mut names = Vec::new();
            output_paths(&e, &mut names);
            for path_expr in names {
                let first = &path_expr.parts[0];
                let err = |message: String, hint: Option<String>, span| {
                    let mut err =
                        feed_lang::QueryError::new(feed_lang::ErrorKind::Check, message, span);
                    err.hint = hint;
                    cfg.error_in_text(path, text, &err)
                };
                if first.name.eq_ignore_ascii_case("value_model") {
                    return Err(err(
                        "the value model cannot refer to itself".into(),
                        None,
                        path_expr.span,
                    ));
                }
                let name = first.name.to_ascii_lowercase();
                let Some(declared) = cfg.policy(&name) else {
                    let hint = did_you_mean(&name, cfg.policies.iter().map(|p| p.name()))
                        .map(|s| format!("did you mean `{s}`?"));
                    return Err(err(
                        format!("no policy is named `{}`", first.name),
                        hint,
                        first.span,
                    ));
                };
                let head = path_expr.parts.get(1).map(|h| h.name.as_str());
                if let Err(e) = super::output_name(&name, &declared.heads(), head) {
                    return Err(err(e.message, e.hint, path_expr.span));
                }
            }
            Combine::Expression(text.to_string())
        }
        (Some(weights), None) => {
            if weights.is_empty() {
                return Err(cfg.error_at(
                    &format!("{at}.weights"),
                    "is empty",
                    Some("e.g. `{als: 1}`".into()),
                ));
            }
            let mut terms = Vec::with_capacity(weights.len());
            for (key, w) in weights {
                let path = format!("{at}.weights.{key}");
                if !w.is_finite() {
                    return Err(cfg.error_at(&path, "must be a finite number", None));
                }
                let (policy, head) = match key.split_once('.') {
                    Some((p, h)) => (p, Some(h)),
                    None => (key.as_str(), None),
                };
                let Some(declared) = cfg.policy(policy) else {
                    return Err(unknown_policy(cfg, &path, policy));
                };
                let (output, head) = super::output_name(policy, &declared.heads(), head)
                    .map_err(|e| cfg.error_at(&path, e.message, e.hint))?;
                terms.push(Weight {
                    output,
                    policy: policy.to_string(),
                    head,
                    weight: *w,
                });
            }
            Combine::Weights(terms)
        }
    };
    for (col, s) in &vm.demotions {
        if !(s.is_finite() && (0.0..=1.0).contains(s)) {
            return Err(cfg.error_at(
                &format!("{at}.demotions.{col}"),
                "strength must be in [0, 1]",
                None,
            ));
        }
    }
    Ok(ValueModel {
        combine,
        demotions: vm.demotions.clone(),
    })
}

/// Lists of internally tagged blocks: serde buffers each element, so its errors lose the
/// element's index and field. Re-deserialising element by element finds them again.
fn refine_in_list(
    text: &str,
    list: &str,
) -> Option<(String, serde_yaml::Error, serde_yaml::Value)> {
    let root: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    let items = root.get(list)?.as_sequence()?;
    for (i, item) in items.iter().enumerate() {
        let err = match list {
            "policies" => serde_yaml::from_value::<PolicyConfig>(item.clone()).err(),
            "connectors" => serde_yaml::from_value::<ConnectorConfig>(item.clone()).err(),
            _ => None,
        };
        if let Some(e) = err {
            return Some((format!("{list}[{i}]"), e, item.clone()));
        }
    }
    None
}

/// The key of `item` whose scalar value serde quoted in an "invalid type/value" message.
fn key_with_value(item: &serde_yaml::Value, message: &str) -> Option<String> {
    let rest = message.split_once(": ")?.1;
    let shown = rest.split(", expected").next()?;
    let literal = shown
        .split_once('"')
        .and_then(|(_, r)| r.rsplit_once('"').map(|(v, _)| v.to_string()))
        .or_else(|| shown.split('`').nth(1).map(str::to_string));
    let map = item.as_mapping()?;
    for (k, v) in map {
        let matches = match (&literal, v) {
            (Some(l), serde_yaml::Value::String(s)) => s == l,
            (Some(l), serde_yaml::Value::Number(n)) => n.to_string() == *l,
            (Some(l), serde_yaml::Value::Bool(b)) => b.to_string() == *l,
            (None, serde_yaml::Value::Mapping(_)) => shown.contains("map"),
            (None, serde_yaml::Value::Sequence(_)) => shown.contains("sequence"),
            _ => false,
        };
        if matches {
            return k.as_str().map(str::to_string);
        }
    }
    None
}

/// Single-part names in an expression (policy outputs), with their spans.
/// The paths of an expression that name policy outputs (all but `item.` and `user.` columns).
fn output_paths<'a>(e: &'a feed_lang::ast::Expr, out: &mut Vec<&'a feed_lang::ast::Path>) {
    use feed_lang::ast::ExprKind;
    match &e.kind {
        ExprKind::Path(p)
            if !["item", "user"]
                .iter()
                .any(|c| p.parts.len() == 2 && p.parts[0].name.eq_ignore_ascii_case(c)) =>
        {
            out.push(p)
        }
        ExprKind::Call { args, .. } => args.iter().for_each(|a| output_paths(a, out)),
        ExprKind::Unary { expr, .. } | ExprKind::IsNull { expr, .. } => output_paths(expr, out),
        ExprKind::Binary { lhs, rhs, .. } => {
            output_paths(lhs, out);
            output_paths(rhs, out);
        }
        ExprKind::In { expr, list, .. } => {
            output_paths(expr, out);
            list.iter().for_each(|a| output_paths(a, out));
        }
        ExprKind::Between {
            expr, low, high, ..
        } => {
            for x in [expr, low, high] {
                output_paths(x, out);
            }
        }
        ExprKind::Like { expr, pattern, .. } => {
            output_paths(expr, out);
            output_paths(pattern, out);
        }
        _ => {}
    }
}

/// Turns a serde_yaml error into a located one-line error with a hint.
fn serde_error(
    e: &serde_yaml::Error,
    text: &str,
    file: &str,
    locations: &Locations,
) -> ConfigError {
    let mut err = serde_error_at(e, file, locations);
    // An alias bomb (aliases of aliases expanding past serde_yaml's limit) has no position:
    // point at the first alias, which is where the expansion starts.
    if err.line.is_none() && err.message.contains("repetition limit exceeded") {
        let first_alias = text.lines().enumerate().find_map(|(i, l)| {
            l.find(['*', '&'])
                .filter(|&at| l[at + 1..].starts_with(|c: char| c.is_alphanumeric()))
                .map(|at| (i + 1, at + 1))
        });
        err.line = first_alias.map(|p| p.0).or(Some(1));
        err.column = first_alias.map(|p| p.1).or(Some(1));
        err.message = "the file's aliases (`&name` … `*name`) expand past the limit".into();
        err.hint = Some("write the repeated parts out, or use fewer nested aliases".into());
    }
    // YAML does not allow tabs for indentation; serde_yaml's words do not say so.
    if let Some(line) = err.line.and_then(|l| text.lines().nth(l - 1)) {
        if line.trim_start_matches(' ').starts_with('\t') {
            err.hint = Some("YAML is indented with spaces; this line starts with a tab".into());
        }
    }
    if err.path == "policies" || err.path == "connectors" {
        if let Some((path, inner, item)) = refine_in_list(text, &err.path) {
            let mut refined = serde_error_at(&inner, file, locations);
            let field = if refined.message.starts_with("unknown variant") {
                Some("type".to_string())
            } else if refined.message.starts_with("invalid") {
                key_with_value(&item, &refined.message)
            } else {
                None
            };
            let unknown_field = refined.message.starts_with("unknown field")
                || refined.message.starts_with("duplicate field");
            refined.path = match &field {
                Some(f) => format!("{path}.{f}"),
                None => path.clone(),
            };
            let pos = if unknown_field {
                let word = refined.message.split('`').nth(1).unwrap_or_default();
                locations.key(&format!("{path}.{word}"))
            } else {
                locations.value(&refined.path)
            };
            refined.line = pos.map(|p| p.0);
            refined.column = pos.map(|p| p.1);
            err = refined;
        }
    }
    err
}

fn serde_error_at(e: &serde_yaml::Error, file: &str, locations: &Locations) -> ConfigError {
    let full = e.to_string();
    // serde_yaml appends " at line L column C"; we print the position ourselves.
    let without_pos = match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full.clone(),
    };
    // And prefixes the field path: "policies[0]: unknown field ...".
    let (path, message) = match without_pos.split_once(": ") {
        Some((p, m)) if !p.contains(' ') && !p.is_empty() => (p.to_string(), m.to_string()),
        _ => (String::new(), without_pos.clone()),
    };
    let mut pos = e.location().map(|l| (l.line(), l.column()));
    let ticked: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let mut hint = None;
    if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        if let Some((word, expected)) = ticked.split_first() {
            let what = if message.starts_with("unknown field") {
                "key"
            } else {
                "value"
            };
            hint = Some(match did_you_mean(word, expected.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if expected.is_empty() => format!("remove the {what} `{word}`"),
                None => format!("expected one of: {}", expected.join(", ")),
            });
            if message.starts_with("unknown field") {
                let key_path = if path.is_empty() {
                    word.to_string()
                } else {
                    format!("{path}.{word}")
                };
                if let Some(p) = locations.key(&key_path) {
                    pos = Some(p);
                }
            }
        }
    } else if message.starts_with("duplicate field") {
        // The index keeps the last position of a key: where the repeat is.
        if let Some(word) = ticked.first() {
            let key_path = if path.is_empty() {
                word.to_string()
            } else {
                format!("{path}.{word}")
            };
            if let Some(p) = locations
                .keys_at(&key_path)
                .or_else(|| locations.key_under(&path, word))
            {
                pos = Some(p);
            }
            hint = Some(format!("`{word}` is given twice here: keep one"));
        }
    } else if message.starts_with("missing field") {
        if let Some(word) = ticked.first() {
            hint = Some(format!("add `{word}:`"));
        }
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let expected = message.rsplit(", expected ").next().unwrap_or_default();
        let plain = match expected {
            "usize" | "u64" | "u32" | "i64" | "i32" => "a whole number",
            "f32" | "f64" => "a number",
            "a boolean" => "true or false",
            other => other,
        };
        hint = Some(format!("write {plain} here (see spec/config.md)"));
    }
    let message = match message.find(", expected one of") {
        Some(i)
            if hint
                .as_deref()
                .is_some_and(|h| h.starts_with("did you mean")) =>
        {
            message[..i].to_string()
        }
        _ => message,
    };
    if message.contains("struct RawModelFile") {
        hint = Some("a model file is a mapping with `model:`, `connectors:`, `fetch:` and `policies:` (see spec/config.md)".into());
    }
    ConfigError {
        file: file.to_string(),
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        path,
        message: plain_words(&message),
        hint,
    }
}

/// serde's words for types, in the model file's terms: no Rust type names in a message.
pub fn plain_words(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, plain) in [
        ("expected usize", "expected a whole number >= 0"),
        ("expected u64", "expected a whole number >= 0"),
        ("expected u32", "expected a whole number >= 0"),
        ("expected u16", "expected a whole number >= 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
    ] {
        // As a whole word (`expected u32`, not `expected u32x`), wherever it stands.
        let mut from = 0;
        while let Some(i) = out[from..].find(rust).map(|i| i + from) {
            let end = i + rust.len();
            if out[end..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                from = end;
                continue;
            }
            out.replace_range(i..end, plain);
            from = i + plain.len();
        }
    }
    // A value quoted in the message is cut short: a CSV given as `--file` is one long string,
    // and the whole file must not come back in the error.
    const SHOWN: usize = 60;
    if let (Some(open), Some(close)) = (out.find('"'), out.rfind('"')) {
        if close > open + SHOWN {
            let cut = (open + 1..=open + SHOWN)
                .rev()
                .find(|&i| out.is_char_boundary(i))
                .unwrap_or(open + 1);
            out.replace_range(cut..close, "…");
        }
    }
    // `expected struct RawModelFile`, `struct PopularConfig`: a mapping, in the file's words.
    while let Some(i) = out.find("struct ") {
        let end = out[i + 7..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .map_or(out.len(), |e| i + 7 + e);
        out.replace_range(i..end, "a mapping of keys");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_in_the_files_words() {
        let e = parse("- a\n- b\n", "m.yaml", Path::new(".")).unwrap_err();
        assert!(!e.to_string().contains("RawModelFile"), "{e}");
        assert!(e.hint.unwrap().contains("`model:`"));
        let e = err(&GOOD.replace("factors: 16", "factors: -5"));
        assert!(e.message.contains("a whole number >= 0"), "{e}");
        let e = parse(
            "model: {name: m}\nmodel: {name: n}\n",
            "m.yaml",
            Path::new("."),
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (Some(2), Some(1)), "{e}");
        let csv = format!("user_id,item_id,timestamp\n{}", "u1,i1,1\n".repeat(100_000));
        let e = parse(&csv, "ratings.csv", Path::new(".")).unwrap_err();
        assert!(e.to_string().len() < 400, "{}", &e.to_string()[..400]);
        let e = parse("model:\n\tname: m\n", "m.yaml", Path::new(".")).unwrap_err();
        assert!(e.hint.as_deref().unwrap_or("").contains("tab"), "{e:?}");
    }

    #[test]
    fn memory_amounts_parse_with_units() {
        assert_eq!(parse_bytes("512MB"), Some(512_000_000));
        assert_eq!(parse_bytes("1.5 GiB"), Some(1_610_612_736));
        assert_eq!(parse_bytes("2048"), Some(2048));
        for bad in ["", "lots", "5 parsecs", "-1GB", "1e30"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
    }

    const GOOD: &str = r#"
model: {name: ml, description: test}
connectors:
  - {id: ratings, type: file, path: ratings.csv}
fetch:
  events: SELECT user_id, item_id, timestamp FROM ratings
policies:
  - {name: popular, type: popular}
  - name: als
    type: als
    factors: 16
value_model:
  weights: {als: 1}
"#;

    fn err(text: &str) -> ConfigError {
        parse(text, "m.yaml", Path::new(".")).unwrap_err()
    }

    #[test]
    fn every_trial_a_search_can_draw_is_checked() {
        let sasrec = |search: &str| {
            GOOD.replace(
                "value_model:\n  weights: {als: 1}\n",
                &format!("  - {{name: seq, type: sasrec, hidden: 64, tuning: {{trials: 30, search: {search}}}}}\n"),
            )
        };
        // Both ends divide 64; some draws between them do not.
        let e = err(&sasrec("{heads: {int: [1, 8]}}"));
        assert_eq!(e.path, "policies[2].tuning.search", "{e}");
        assert!(
            e.message.contains("cannot train") && e.message.contains("heads="),
            "{e}"
        );
        assert!(e.line.is_some(), "located: {e}");
        parse(&sasrec("{heads: [1, 2, 4, 8]}"), "m.yaml", Path::new(".")).unwrap();
        let e = err(&sasrec("{heads: [1, 100]}"));
        assert_eq!(e.path, "policies[2].tuning.search.heads", "{e}");
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let c = parse(GOOD, "m.yaml", Path::new(".")).unwrap();
        assert_eq!(c.name, "ml");
        match &c.policies[1] {
            PolicyConfig::Als(a) => {
                assert_eq!(a.factors, 16);
                assert_eq!(a.iterations, super::super::raw::defaults::iterations());
            }
            _ => panic!(),
        }
    }

    #[test]
    fn misspelled_key_is_located_with_did_you_mean() {
        let e = err(&GOOD.replace("factors: 16", "factor: 16"));
        let s = e.to_string();
        assert_eq!((e.line, e.column), (Some(11), Some(5)), "{s}");
        assert_eq!(e.path, "policies[1]");
        assert!(
            s.contains("policies[1]")
                && s.contains("unknown field `factor`")
                && s.contains("did you mean `factors`?"),
            "{s}"
        );
    }

    #[test]
    fn wrong_type_is_located() {
        let e = err(&GOOD.replace("factors: 16", "factors: many"));
        assert_eq!((e.line, e.column), (Some(11), Some(14)), "{e}");
        assert_eq!(e.path, "policies[1].factors");
        assert!(e.to_string().contains("invalid type"), "{e}");
        assert!(e.to_string().contains("write a whole number here"), "{e}");
    }

    #[test]
    fn unknown_policy_type_suggests() {
        let e = err(&GOOD.replace("type: als", "type: alss"));
        assert!(e.to_string().contains("did you mean `als`?"), "{e}");
        assert_eq!(
            (e.path.as_str(), e.line),
            ("policies[1].type", Some(10)),
            "{e}"
        );
        let e = err(&GOOD.replace("path: ratings.csv", "pth: ratings.csv"));
        assert_eq!((e.path.as_str(), e.line), ("connectors[0]", Some(4)), "{e}");
        assert!(e.to_string().contains("did you mean `path`?"), "{e}");
    }

    #[test]
    fn saved_queries_are_checked_and_located() {
        let block =
            format!("{GOOD}queries:\n  for_you: |\n    SELECT *\n    FORM popular(limit = 10)\n");
        let e = err(&block);
        assert_eq!(e.path, "queries.for_you");
        assert_eq!((e.line, e.column), (Some(17), Some(5)), "{e}");
        assert!(e.to_string().contains("did you mean `FROM`?"), "{e}");
        let inline = format!("{GOOD}queries:\n  top: SELECT * FROM popular(limt = 5)\n");
        let e = err(&inline);
        assert_eq!((e.line, e.column), (Some(15), Some(30)), "{e}");
        assert!(e.to_string().contains("did you mean `limit`?"), "{e}");
        let ok = format!("{GOOD}queries:\n  top: SELECT * FROM popular(limit = 5) LIMIT 3\n");
        assert!(parse(&ok, "m.yaml", Path::new(".")).is_ok());
    }

    #[test]
    fn value_model_expressions_are_checked() {
        let with = |e: &str| GOOD.replace("  weights: {als: 1}", &format!("  expression: \"{e}\""));
        assert!(parse(
            &with("als + 0.1 * log(1 + popular)"),
            "m.yaml",
            Path::new(".")
        )
        .is_ok());
        let e = err(&with("als + 0.1 * populr"));
        assert!(e.to_string().contains("did you mean `popular`?"), "{e}");
        assert_eq!((e.line, e.column), (Some(13), Some(28)), "{e}");
        let e = err(&with("als +"));
        assert_eq!(e.path, "value_model.expression", "{e}");
    }

    #[test]
    fn semantic_errors_point_at_the_field() {
        let e = err(&GOOD.replace("{name: popular,", "{name: Popular,"));
        assert_eq!(e.path, "policies[0].name");
        assert_eq!(e.line, Some(8), "{e}");
        let e = err(&GOOD.replace("{als: 1}", "{alz: 1}"));
        assert!(e.to_string().contains("did you mean `als`?"), "{e}");
        assert_eq!(e.line, Some(13), "{e}");
        let e = err(&GOOD.replace(
            "- {name: popular, type: popular}",
            "- {name: als, type: popular}",
        ));
        assert!(e.to_string().contains("used twice"), "{e}");
    }
}
