//! Making a model version: validate → SCHEDULING → FETCHING → TRAINING → DEPLOYING → ACTIVE.
//!
//! Everything that can be checked without data is checked before a version exists, so a broken
//! file stores nothing. Once a version exists, any failure ends it in ERROR with the reason and
//! leaves the ACTIVE version serving.

mod budget;
mod pair_scores;
mod promote;
mod rollback;
mod tuning;

pub use promote::{promote, Candidate, Promoted};
pub use rollback::rollback;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use crate::config::ModelConfig;
use crate::core::{human_bytes, Compute, MemoryEstimate, MemoryReport};
use crate::dataset::{self, Cut, Dataset, Target};
use crate::eval::{self, EvalReport, PolicyReport};
use crate::nn::{self, DeviceChoice};
use crate::policy::{self, Policy, Popular, TrainContext, TrainedPolicy};
use crate::progress::Progress;
use crate::registry::{Registry, Status, VersionRun};
use crate::serving::artifacts;
use crate::util::memory::PeakMeter;
use crate::{fetch, Error, Result};

/// Whether the model must be new or must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// How a run reports and can be stopped.
#[derive(Clone)]
pub struct RunOptions {
    pub progress: Arc<dyn Progress>,
    pub cancel: Arc<AtomicBool>,
    /// Retrain even when only the value model, queries or serving changed.
    pub retrain: bool,
    /// Make the version but leave ACTIVE where it is ([`crate::registry::VersionRun::finish`]).
    pub candidate: bool,
}

/// A finished run.
#[derive(Debug)]
pub struct Outcome {
    pub model: String,
    pub version: u32,
    pub status: Status,
    pub report: EvalReport,
    /// What the fetch skipped (rows with null ids or times, duplicates), also in the status log.
    pub warnings: Vec<String>,
}

/// Checks a model file against its data sources without training: the whole of `validate`.
pub async fn validate(config: &ModelConfig) -> Result<()> {
    checked_plan(config).await.map(|_| ())
}

/// The fetch plan of a file that passed every check that needs no rows: its SQL against the
/// sources' schemas, the names its value model and queries bind, its features, and each
/// policy's memory estimate from its settings.
async fn checked_plan(config: &ModelConfig) -> Result<fetch::FetchPlan> {
    let plan = fetch::plan(config).await?;
    check_bindings(config, &plan)?;
    check_feature_columns(config, &plan)?;
    budget::check(config, None)?;
    Ok(plan)
}

/// The columns a fetch statement yields (none when the file does not declare it).
fn column_names(df: &Option<datafusion::dataframe::DataFrame>) -> Vec<String> {
    df.as_ref()
        .map(|d| {
            d.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Every feature a two-tower or multi-task policy declares is a column its fetch yields, and
/// a ranker's affinity, label and position columns are too (labels and positions of a type
/// it can read); an ONNX policy's file matches its declaration, and the columns it reads are
/// numbers.
fn check_feature_columns(config: &ModelConfig, plan: &fetch::FetchPlan) -> Result<()> {
    use crate::config::PolicyConfig;
    for (p, policy) in config.policies.iter().enumerate() {
        let (user_features, item_features, affinity) = match policy {
            PolicyConfig::TwoTower(c) => (&c.user_features, &c.item_features, &[][..]),
            PolicyConfig::MultiTask(c) => {
                if let Some(df) = &plan.impressions {
                    policy::check_ranker_columns(c, df.schema().as_arrow()).map_err(
                        |(field, message, hint)| {
                            config.error_at(&format!("policies[{p}].{field}"), message, hint)
                        },
                    )?;
                }
                (&c.user_features, &c.item_features, &c.affinity[..])
            }
            PolicyConfig::Onnx(c) => {
                let schema = |df: &Option<datafusion::dataframe::DataFrame>| {
                    df.as_ref().map(|d| d.schema().as_arrow().clone())
                };
                let (items, users) = (schema(&plan.items), schema(&plan.users));
                policy::check_onnx_columns(c, items.as_ref(), users.as_ref())
                    .and_then(|()| policy::check_onnx_file(config, c))
                    .map_err(|(field, message, hint)| {
                        config.error_at(&format!("policies[{p}].{field}"), message, hint)
                    })?;
                continue;
            }
            _ => continue,
        };
        let affinity: Vec<crate::config::FeatureSpec> = affinity
            .iter()
            .map(|a| crate::config::FeatureSpec::Column(a.clone()))
            .collect();
        for (field, specs, df, fetch) in [
            ("item_features", item_features, &plan.items, "fetch.items"),
            ("user_features", user_features, &plan.users, "fetch.users"),
            ("affinity", &affinity, &plan.items, "fetch.items"),
        ] {
            let columns = column_names(df);
            for (i, spec) in specs.iter().enumerate() {
                let name = spec.column();
                if columns.iter().any(|c| c == name) {
                    continue;
                }
                let hint = if df.is_none() {
                    Some(format!("declare `{fetch}` to read {field}"))
                } else {
                    crate::did_you_mean(name, columns.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some(format!("`{fetch}` yields: {}", columns.join(", "))))
                };
                return Err(config
                    .error_at(
                        &format!("policies[{p}].{field}[{i}]"),
                        format!("`{name}` is not a column of `{fetch}`"),
                        hint,
                    )
                    .into());
            }
        }
    }
    Ok(())
}

/// Binds every saved query and the value model against what the fetch yields and the policies —
/// the same binding serving does — so a broken one fails here, located in the model file.
fn check_bindings(config: &ModelConfig, plan: &fetch::FetchPlan) -> Result<()> {
    let names = fetch_names(config, plan);
    check_value_models(config, &names)?;
    check_saved_queries(config, &names)
}

/// What queries may name, as the fetch yields it (the names a version will serve).
fn fetch_names(config: &ModelConfig, plan: &fetch::FetchPlan) -> crate::expr::Names {
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    // Ids are stored as text, whatever type the fetch yields them in.
    let schema = |df: &Option<datafusion::dataframe::DataFrame>| -> Option<Schema> {
        df.as_ref().map(|d| {
            let fields: Vec<Field> = d
                .schema()
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    "item_id" | "user_id" => Field::new(f.name(), DataType::Utf8, true),
                    _ => f.as_ref().clone(),
                })
                .collect();
            Schema::new(fields)
        })
    };
    // Without `fetch.items` the catalog holds the ids alone.
    let items = schema(&plan.items)
        .unwrap_or_else(|| Schema::new(vec![Field::new("item_id", DataType::Utf8, false)]));
    let users = schema(&plan.users);
    crate::expr::Names::new(&items, users.as_ref(), &config.policies)
        .with_event_types(&config.events.types)
}

/// The value models' expressions and demotion columns (the file's and each experiment
/// variant's), against the fetch's names.
fn check_value_models(config: &ModelConfig, names: &crate::expr::Names) -> Result<()> {
    let variants = config.experiments.iter().enumerate().flat_map(|(i, e)| {
        e.variants
            .iter()
            .enumerate()
            .filter_map(move |(j, v)| match &v.arm {
                crate::config::experiments::Arm::ValueModel(vm) => Some((
                    format!("serving.experiments[{i}].variants[{j}].value_model"),
                    vm,
                )),
                _ => None,
            })
    });
    let declared = config
        .value_model
        .iter()
        .map(|vm| ("value_model".to_string(), vm));
    for (at, vm) in declared.chain(variants) {
        check_value_model(config, vm, &at, names)?;
    }
    Ok(())
}

/// One value model, declared at `at`.
fn check_value_model(
    config: &ModelConfig,
    vm: &crate::config::ValueModel,
    at: &str,
    names: &crate::expr::Names,
) -> Result<()> {
    // The value model binds like a query's score: a name or type it gets wrong fails here, not
    // when the version loads.
    if let crate::config::Combine::Expression(text) = &vm.combine {
        if let Ok(e) = feed_lang::parse_score(text) {
            let path = &format!("{at}.expression");
            let bound = crate::expr::bind(&e, crate::expr::Stage::ValueModel, names, &[])
                .map_err(|e| config.error_in_text(path, text, &e))?;
            // `rank` requests carry no parameters: the value model cannot read one.
            if let Some(p) = bound.needs.params.keys().next() {
                return Err(config
                        .error_at(
                            path,
                            format!("reads the parameter ${p}, but the value model is evaluated without parameters (`rank` has none)"),
                            Some("write the value in, or weigh it in a saved query's ORDER BY score(...)".into()),
                        )
                        .into());
            }
        }
    }
    for column in vm.demotions.keys() {
        let path = format!("{at}.demotions.{column}");
        let span = feed_lang::Span::new(0, column.len());
        let ty = match names.item(column, span) {
            Ok((_, ty)) => crate::expr::Ty::of(ty),
            Err(e) => return Err(config.error_at(&path, e.message, e.hint).into()),
        };
        if !matches!(ty, crate::expr::Ty::Num | crate::expr::Ty::Bool) {
            return Err(config
                    .error_at(
                        &path,
                        format!("a demotion multiplies by 1 − strength × `{column}`, which is {}", ty.words()),
                        Some(format!("demote by a numeric column of `fetch.items`, or convert it there: `TRY_CAST({column} AS DOUBLE) AS {column}`")),
                    )
                    .into());
        }
    }
    Ok(())
}

/// Each saved query, and its parameter defaults against their uses.
fn check_saved_queries(config: &ModelConfig, names: &crate::expr::Names) -> Result<()> {
    for (name, saved) in &config.queries {
        let text = saved.text.as_str();
        // Parsing and static checks passed when the file was read.
        let Ok(q) = feed_lang::parse_query(text) else {
            continue;
        };
        let plan = crate::query::bind(&q, text, names)
            .map_err(|e| config.error_in_text(&saved.path, text, &e))?;
        // A default must be a value its parameter can take.
        let defaults: crate::expr::Params = saved
            .defaults
            .iter()
            .map(|(k, v)| (k.clone(), crate::expr::from_default(v)))
            .collect();
        // A default LIMIT or OFFSET must be one a request could give.
        for (param, uses) in &plan.params {
            let Some(crate::expr::ParamValue::Num(n)) = defaults.get(param) else {
                continue;
            };
            for u in uses {
                let (low, max) = match u.what.as_str() {
                    crate::query::LIMIT_USE => (1.0, config.serving.max_limit as f64),
                    crate::query::OFFSET_USE => {
                        (0.0, feed_lang::CheckOptions::default().max_offset as f64)
                    }
                    _ => continue,
                };
                if *n < low || *n > max {
                    return Err(config
                        .error_at(
                            &format!("queries.{name}.params.{param}"),
                            format!("{} must be between {low} and {max}, got {n}", u.what),
                            Some("the LIMIT bound is `serving.max_limit`".into()),
                        )
                        .into());
                }
            }
        }
        // (Parameters without a default come with each request.)
        let with_defaults: std::collections::BTreeMap<_, _> = plan
            .params
            .iter()
            .filter(|(k, _)| defaults.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        crate::expr::check_uses(&with_defaults, &defaults, |_| false).map_err(|e| match e {
            Error::Invalid { what, message, .. } => Error::from(config.error_at(
                &format!("queries.{name}.params.{}", what.trim_start_matches('$')),
                message,
                Some("give a default of the type the query uses it as".into()),
            )),
            e => e,
        })?;
    }
    Ok(())
}

/// Creates or updates a model: a new version, trained, evaluated and made ACTIVE.
#[tracing::instrument(skip_all, fields(model = %config.name, ?mode))]
pub async fn run(
    registry: &Registry,
    config: ModelConfig,
    mode: Mode,
    options: RunOptions,
) -> Result<Outcome> {
    // One writer per model, taken before the existence checks so that they cannot race: of two
    // creates started together, one makes the model and the other is refused.
    let Some(_writer) = registry.try_writer(&config.name)? else {
        return Err(Error::invalid(
            "model.name",
            match mode {
                Mode::Create => format!(
                    "model `{}` already exists: another run is creating it",
                    config.name
                ),
                Mode::Update => format!(
                    "model `{}` is being changed by another run; wait for it to end (or stop its process)",
                    config.name
                ),
            },
        ));
    };
    match mode {
        // A model whose versions all failed can be created again.
        Mode::Create if registry.active_version(&config.name)?.is_some() => {
            return Err(Error::invalid(
                "model.name",
                format!(
                    "model `{}` already exists; use update-model to make a new version",
                    config.name
                ),
            ))
        }
        Mode::Update if !registry.exists(&config.name) => {
            return Err(match registry.unknown_model(&config.name) {
                Error::NotFound { what, name, hint } => Error::NotFound {
                    what,
                    hint: Some(format!(
                        "use create-model to make it{}",
                        hint.filter(|h| h.starts_with("did you mean"))
                            .map(|h| format!(", or {h}"))
                            .unwrap_or_default()
                    )),
                    name,
                },
                other => other,
            })
        }
        _ => {}
    }
    if options.candidate && registry.active_version(&config.name)?.is_none() {
        return Err(Error::invalid(
            "candidate",
            format!(
                "`{}` has no ACTIVE version for a candidate to be compared with",
                config.name
            ),
        )
        .with_hint("make it ACTIVE: run the command without --candidate"));
    }
    check_experiment_versions(registry, &config)?;
    let plan = checked_plan(&config).await?;
    let what = match mode {
        Mode::Create => "create-model",
        Mode::Update => "update-model",
    };
    let reusable = match mode {
        Mode::Update if !options.retrain => reusable_version(registry, &config)?,
        _ => None,
    };
    let run = Arc::new(registry.begin(
        &config.name,
        &config.text,
        &format!("{what} from {}", config.file),
    )?);
    let (model_dir, retention) = (
        registry.model_dir(&config.name),
        config.events.retention_seconds(),
    );
    let result = match reusable {
        Some(from) => redeploy(run.clone(), Arc::new(config), from, options.candidate).await,
        None => {
            let model_dir = registry.model_dir(&config.name);
            execute(run.clone(), Arc::new(config), plan, options, &model_dir).await
        }
    };
    match result {
        Ok(mut outcome) => {
            // A home on object storage keeps no event log to compact.
            if outcome.status == Status::Active && !registry.is_remote() {
                // The new version trained on the log up to its watermark: what is below it and
                // older than the live horizon moves to Parquet. A failure costs nothing stored.
                let dir = run.dir.clone();
                let compacted = on_blocking_pool("compacting the event log", move || {
                    let watermark = artifacts::read_manifest(&dir)?.live_watermark;
                    crate::live::compact(
                        &crate::live::log_dir(&model_dir),
                        watermark,
                        retention,
                        crate::live::now(),
                    )
                })
                .await;
                match compacted {
                    Ok(c) if c != crate::live::Compaction::default() => tracing::info!(
                        segments = c.segments,
                        events = c.events,
                        expired = c.expired,
                        "compacted the event log"
                    ),
                    Ok(_) => {}
                    Err(e) => outcome
                        .warnings
                        .push(format!("the event log was not compacted: {e}")),
                }
            }
            Ok(outcome)
        }
        Err(e) => {
            run.fail(&e);
            Err(e)
        }
    }
}

/// The versions an experiment answers with besides ACTIVE exist and are complete, before a
/// version that would route requests to them is made.
fn check_experiment_versions(registry: &Registry, config: &ModelConfig) -> Result<()> {
    let wanted = crate::config::experiments::versions(&config.experiments);
    if wanted.is_empty() {
        return Ok(());
    }
    let versions = if registry.exists(&config.name) {
        registry.versions(&config.name)?
    } else {
        Vec::new()
    };
    for (version, path) in wanted {
        let problem = match versions.iter().find(|v| v.version == version) {
            None => format!("`{}` has no version {version}", config.name),
            Some(v) if !v.is_complete() => format!(
                "version {version} of `{}` never finished deploying ({}: {})",
                config.name, v.status, v.message
            ),
            Some(_) => continue,
        };
        let complete: Vec<String> = versions
            .iter()
            .filter(|v| v.is_complete())
            .map(|v| v.version.to_string())
            .collect();
        return Err(config
            .error_at(
                &path,
                problem,
                Some(if complete.is_empty() {
                    "a `version:` variant names a complete version of this model".into()
                } else {
                    format!("complete versions: {}", complete.join(", "))
                }),
            )
            .into());
    }
    Ok(())
}

/// The ACTIVE version whose trained artifacts an update can reuse: its file differs from the
/// new one, but only in what needs no training (value model, queries, serving).
fn reusable_version(registry: &Registry, config: &ModelConfig) -> Result<Option<u32>> {
    let Some(active) = registry.active_version(&config.name)? else {
        return Ok(None);
    };
    let dir = registry.version_files(&config.name, active, &[artifacts::MANIFEST, "model.yaml"])?;
    let Ok(manifest) = artifacts::read_manifest(&dir) else {
        return Ok(None);
    };
    let previous_text = std::fs::read_to_string(dir.join("model.yaml")).unwrap_or_default();
    // Versions from before the vector store (format 1) have no Lance datasets to link.
    let same_training = manifest.format >= artifacts::FORMAT
        && !manifest.training_key.is_null()
        && manifest.training_key == config.training_key();
    // An identical file asks for fresh training (the data may have changed).
    Ok((same_training && previous_text != config.text).then_some(active))
}

/// A new version from the artifacts of version `from`: only the serving side changed.
async fn redeploy(
    run: Arc<VersionRun>,
    config: Arc<ModelConfig>,
    from: u32,
    candidate: bool,
) -> Result<Outcome> {
    run.set_status(
        Status::Deploying,
        &format!(
            "only value_model, queries or serving changed: reusing the trained artifacts of version {from}; nothing is retrained"
        ),
    )?;
    let deploying = run.clone();
    let (status, report) = on_blocking_pool("deploy", move || {
        let from_dir = deploying.sibling_dir(from)?;
        let report = artifacts::read_report(&from_dir)?
            .ok_or_else(|| Error::Internal(format!("version {from} has no metrics")))?;
        let primary = primary_policy(&config, &report);
        artifacts::reuse(
            &deploying.dir,
            &from_dir,
            &config,
            deploying.version,
            from,
            &primary,
        )?;
        Ok((deploying.finish(candidate)?, report))
    })
    .await?;
    Ok(run.outcome(status, report))
}

/// Runs model or file work on the blocking pool, never on the async workers.
async fn on_blocking_pool<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Internal(format!("{what} task failed: {e}")))?
}

async fn execute(
    run: Arc<VersionRun>,
    config: Arc<ModelConfig>,
    plan: fetch::FetchPlan,
    options: RunOptions,
    model_dir: &std::path::Path,
) -> Result<Outcome> {
    run.set_status(Status::Fetching, "fetching events, items and users")?;
    let start = Instant::now();
    // The fetch runs within its time budget; on expiry the stream is dropped, which stops the
    // query.
    let limits = config.fetch_limits;
    // The live log's interactions up to now train with the fetched events; the item changes
    // logged so far are the source's to show from now on.
    let logged = {
        let (dir, events) = (model_dir.to_path_buf(), config.events.clone());
        on_blocking_pool("reading the event log", move || {
            crate::live::for_training(&dir, &events)
        })
        .await?
    };
    let ds = tokio::time::timeout(
        limits.timeout,
        dataset::build(plan, limits.memory_bytes, logged, options.progress.as_ref()),
    )
    .await
    .map_err(|_| {
        Error::invalid(
            "fetch.timeout_seconds",
            format!(
                "the fetch took longer than `fetch.timeout_seconds` ({} s) allows",
                limits.timeout.as_secs()
            ),
        )
        .with_hint(
            "narrow the SQL (a recursive or multiplying query?), or raise `fetch.timeout_seconds`",
        )
    })??;
    run.set_status(
        Status::Fetching,
        &format!(
            "fetched {} events ({} from the live event log) of {} users on {} items in {:.1}s",
            ds.n_events(),
            ds.stats.logged_events,
            ds.n_users(),
            ds.n_items(),
            start.elapsed().as_secs_f64()
        ),
    )?;
    let warnings = ds.stats.warnings();
    for w in &warnings {
        run.log(Status::Fetching, w);
    }
    // Only neural policies use a GPU; the probe (which may start CUDA) runs only for them.
    let device = if config.policies.iter().any(|p| p.is_neural()) {
        // The probe may start the CUDA runtime (seconds): not on the async workers.
        let wanted = config.training.device;
        on_blocking_pool("device probe", move || nn::choose_device(wanted)).await?
    } else {
        let setting = format!("{:?}", config.training.device).to_lowercase();
        DeviceChoice::cpu(format!(
            "cpu (training.device = {setting}; popularity and ALS train on the CPU)"
        ))
    };
    let ds = Arc::new(ds);
    let (trained, report, config, tuned) = {
        let (run, config, ds, options) = (run.clone(), config.clone(), ds.clone(), options.clone());
        on_blocking_pool("training", move || {
            train_all(&run, &config, &ds, &options, device)
        })
        .await?
    };
    run.set_status(Status::Deploying, "writing artifacts")?;
    // Writing artifacts and moving the pointer (a blocking file lock) run on the blocking pool.
    let candidate = options.candidate;
    let status = {
        let (run, config, ds) = (run.clone(), config.clone(), ds.clone());
        let report = report.clone();
        on_blocking_pool("deploy", move || {
            let primary = primary_policy(&config, &report);
            artifacts::write(
                &run.dir,
                &config,
                &ds,
                &trained,
                &report,
                run.version,
                &primary,
            )?;
            for (name, settings) in &tuned {
                artifacts::write_tuned(&run.dir, name, settings)?;
            }
            run.finish(candidate)
        })
        .await?
    };
    Ok(Outcome {
        warnings,
        ..run.outcome(status, report)
    })
}

type Trained = BTreeMap<String, Box<dyn TrainedPolicy>>;

/// The policy `rank` uses without a value model: `serving.policy`, or the best on validation.
fn primary_policy(config: &ModelConfig, report: &EvalReport) -> String {
    config
        .serving
        .policy
        .clone()
        .or_else(|| {
            report
                .best_policy(config.policies.iter().map(|p| p.name()))
                .map(str::to_string)
        })
        .unwrap_or_else(|| config.policies[0].name().to_string())
}

/// What training made: the policies, their report, the model as trained (the tuned settings in
/// place) and each tuned policy's kept settings.
type TrainedVersion = (
    Trained,
    EvalReport,
    Arc<ModelConfig>,
    BTreeMap<String, crate::config::tuning::Settings>,
);

/// Runs the policies' `tuning:` searches (TUNING), then trains every policy on the training cut,
/// evaluates on validation and test, and refits on all events for serving (TRAINING). Runs on
/// the blocking pool.
fn train_all(
    run: &VersionRun,
    config: &Arc<ModelConfig>,
    ds: &Dataset,
    options: &RunOptions,
    device: DeviceChoice,
) -> Result<TrainedVersion> {
    let validate = |m: &dyn crate::core::Scorer| {
        eval::evaluate(m, ds, Target::Valid, config.training.eval_users)
    };
    let mut searched = None;
    if tuning::any(config) {
        let names: Vec<&str> = config
            .policies
            .iter()
            .filter(|p| p.tuning().is_some())
            .map(|p| p.name())
            .collect();
        run.set_status(
            Status::Tuning,
            &format!(
                "searching the settings of {} on the validation cut (device: {})",
                names.join(", "),
                device.reason
            ),
        )?;
        let log = |msg: String| run.log(Status::Tuning, &msg);
        let ctx = TrainContext {
            progress: options.progress.as_ref(),
            seed: config.training.seed,
            cancel: &options.cancel,
            log: &log,
            device: device.clone(),
            validate: Some(&validate),
            // Rankers are not tuned.
            pair_scores: None,
        };
        searched = Some(tuning::run(config, ds, &ctx)?);
    }
    run.set_status(Status::Training, &format!("device: {}", device.reason))?;
    let (config, tuned) = match searched {
        Some(t) => (Arc::new(t.config), t.policies),
        None => (config.clone(), BTreeMap::new()),
    };
    let (trained, mut report) = train_policies(run, &config, ds, options, device)?;
    let mut kept = BTreeMap::new();
    for (name, (settings, table)) in tuned {
        if let Some(r) = report.policies.get_mut(&name) {
            r.tuning = Some(table);
        }
        kept.insert(name, settings);
    }
    Ok((trained, report, config, kept))
}

/// Trains every policy of `config` (settings as they stand) and evaluates it.
fn train_policies(
    run: &VersionRun,
    config: &ModelConfig,
    ds: &Dataset,
    options: &RunOptions,
    device: DeviceChoice,
) -> Result<(Trained, EvalReport)> {
    let log = |msg: String| run.log(Status::Training, &msg);
    let validate = |m: &dyn crate::core::Scorer| {
        eval::evaluate(m, ds, Target::Valid, config.training.eval_users)
    };
    let pair_scores = pair_scores::FoldFits { config, ds };
    let ctx = TrainContext {
        progress: options.progress.as_ref(),
        seed: config.training.seed,
        cancel: &options.cancel,
        log: &log,
        device,
        validate: Some(&validate),
        pair_scores: Some(&pair_scores),
    };
    let train_cut = ds.view(Cut::Train);
    let reference_policy = Popular::reference();
    let reference = fit_and_evaluate(
        &reference_policy,
        "popular",
        ds,
        &ctx,
        config.training.eval_users,
        reference_policy.memory(Some(train_cut))?,
    )?
    .1;
    log(format!(
        "reference popularity: test NDCG@10 {:.4}, HR@10 {:.4}",
        reference.test.ndcg, reference.test.hit_rate
    ));
    let mut trained = Trained::new();
    let mut policies = BTreeMap::new();
    for (i, p) in config.policies.iter().enumerate() {
        let policy = policy::build(config, p);
        // Admitted on the data's shape before any work: a run that cannot fit ends here, with
        // the ACTIVE version still serving.
        let estimate = policy.memory(Some(train_cut))?;
        budget::admit(config, i, p, &estimate)?;
        if p.is_ranker() {
            let (model, r) = fit_ranker(policy.as_ref(), p.kind(), ds, &ctx, estimate)?;
            trained.insert(p.name().to_string(), model);
            policies.insert(p.name().to_string(), r);
            continue;
        }
        let (model, r) = fit_and_evaluate(
            policy.as_ref(),
            p.kind(),
            ds,
            &ctx,
            config.training.eval_users,
            estimate,
        )?;
        log(format!(
            "{}: test NDCG@10 {:.4}, HR@10 {:.4}, MRR@10 {:.4}, coverage@10 {:.3} (validation NDCG@10 {:.4}); trained in {:.1}s{}",
            p.name(),
            r.test.ndcg,
            r.test.hit_rate,
            r.test.mrr,
            r.test.coverage,
            r.valid.ndcg,
            r.train_seconds,
            r.memory.as_ref().map(memory_words).unwrap_or_default()
        ));
        trained.insert(p.name().to_string(), model);
        policies.insert(p.name().to_string(), r);
    }
    let users = eval::evaluated_users(ds, Target::Test, config.training.eval_users).len();
    let report = EvalReport {
        protocol: eval::PROTOCOL.to_string(),
        users,
        items: ds.n_items(),
        events: ds.n_events(),
        reference,
        policies,
    };
    Ok((trained, report))
}

/// `; memory: estimated 1.2 GB, measured 0.9 GB` for the status log.
fn memory_words(m: &MemoryReport) -> String {
    let measured = m
        .measured_bytes
        .map(|b| format!(", measured {}", human_bytes(b)))
        .unwrap_or_default();
    format!(
        "; memory: estimated {}{measured}",
        human_bytes(m.estimated_bytes)
    )
}

/// Trains ranker `p` on its impressions: it splits them by time itself and reports each head
/// on its test part; there is no ranking evaluation and no refit.
fn fit_ranker(
    p: &dyn policy::Policy,
    kind: &str,
    ds: &Dataset,
    ctx: &TrainContext<'_>,
    estimate: MemoryEstimate,
) -> Result<(Box<dyn TrainedPolicy>, PolicyReport)> {
    let start = Instant::now();
    let meter = PeakMeter::start();
    let model = p.train(ds.view(Cut::All), ctx)?;
    let train_seconds = start.elapsed().as_secs_f64();
    let on_gpu = ctx.device.compute != Compute::Cpu;
    let measured = meter.finish().filter(|_| !on_gpu);
    ctx.check_cancelled()?;
    let report = PolicyReport {
        kind: kind.to_string(),
        test: Default::default(),
        valid: Default::default(),
        train_seconds,
        training: model.training_summary().cloned(),
        memory: Some(estimate.report(measured)),
        ranker: model.ranker_report().cloned(),
        tuning: None,
        score_reference: None,
    };
    Ok((model, report))
}

/// Trains `p` on the training cut (measuring its peak memory against `estimate`, on the CPU),
/// evaluates it on validation and test, and refits it on every event.
fn fit_and_evaluate(
    p: &dyn policy::Policy,
    kind: &str,
    ds: &Dataset,
    ctx: &TrainContext<'_>,
    eval_users: Option<usize>,
    estimate: MemoryEstimate,
) -> Result<(Box<dyn TrainedPolicy>, PolicyReport)> {
    let start = Instant::now();
    let meter = PeakMeter::start();
    let mut model = p.train(ds.view(Cut::Train), ctx)?;
    let train_seconds = start.elapsed().as_secs_f64();
    // A GPU's memory is not the process's resident set: no measurement there.
    let on_gpu = ctx.device.compute != Compute::Cpu && model.training_summary().is_some();
    let measured = meter.finish().filter(|_| !on_gpu);
    ctx.check_cancelled()?;
    let valid = eval::evaluate(model.as_ref(), ds, Target::Valid, eval_users);
    model.refit(ds.view(Cut::TrainValid))?;
    let test = eval::evaluate(model.as_ref(), ds, Target::Test, eval_users);
    model.refit(ds.view(Cut::All))?;
    let training = model.training_summary().cloned();
    let score_reference = eval::score_reference(model.as_ref(), ds, eval_users);
    Ok((
        model,
        PolicyReport {
            kind: kind.to_string(),
            test,
            valid,
            train_seconds,
            training,
            memory: Some(estimate.report(measured)),
            ranker: None,
            tuning: None,
            score_reference,
        },
    ))
}

impl VersionRun {
    fn outcome(&self, status: Status, report: EvalReport) -> Outcome {
        Outcome {
            model: self.model.clone(),
            version: self.version,
            status,
            report,
            warnings: Vec::new(),
        }
    }
}
