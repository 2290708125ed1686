//! `type: onnx`: a model trained elsewhere, scored through ONNX Runtime. Nothing is learned
//! here: "training" checks the file against the declaration, reads the features it needs per
//! item and per user from the fetched tables, and keeps a copy of the file with the version, so
//! that the version scores the same whatever later happens to the user's file.

mod runtime;
mod signature;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use serde::{Deserialize, Serialize};

pub use signature::{check_columns, check_file};

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy};
use crate::config::{OnnxConfig, OnnxFeature};
use crate::core::RankContext;
use crate::dataset::Interactions;
use crate::error::{Error, IoContext, Result};
use crate::store;

const MODEL: &str = "model.onnx";
const STATE: &str = "onnx.json";
const ITEM_VALUES: &str = "item_values.f32";
const USER_VALUES: &str = "user_values.f32";

pub struct Onnx {
    config: OnnxConfig,
    /// The file, resolved under the data roots, or why it is not there.
    file: std::result::Result<PathBuf, String>,
}

impl Onnx {
    pub fn new(config: OnnxConfig, file: std::result::Result<PathBuf, String>) -> Self {
        Self { config, file }
    }

    fn bytes(&self) -> Result<Vec<u8>> {
        let path = self.file.as_ref().map_err(|m| {
            Error::invalid(format!("policies.{}.file", self.config.name), m.clone())
        })?;
        std::fs::read(path).map_err(|e| {
            Error::invalid(
                format!("policies.{}.file", self.config.name),
                format!("cannot read {}: {e}", path.display()),
            )
        })
    }
}

/// What a version keeps besides the model file: the columns it reads and the catalog's size.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    heads: Vec<String>,
    item_columns: Vec<String>,
    user_columns: Vec<String>,
    n_items: usize,
    n_users: usize,
}

/// Where one column of an input comes from, resolved against the stored tables.
#[derive(Debug, Clone, Copy)]
enum Source {
    Item(usize),
    User(usize),
    Hour,
    History,
}

/// The distinct item and user columns of `c`'s inputs, in order of first use, and each input's
/// columns as sources over them.
fn layout(c: &OnnxConfig) -> (Vec<String>, Vec<String>, Vec<Vec<Source>>) {
    let (mut items, mut users) = (Vec::<String>::new(), Vec::<String>::new());
    let index = |list: &mut Vec<String>, name: &str| match list.iter().position(|c| c == name) {
        Some(k) => k,
        None => {
            list.push(name.to_string());
            list.len() - 1
        }
    };
    let sources = c
        .features()
        .into_iter()
        .map(|features| {
            features
                .into_iter()
                .map(|f| match f {
                    OnnxFeature::Item(c) => Source::Item(index(&mut items, &c)),
                    OnnxFeature::User(c) => Source::User(index(&mut users, &c)),
                    OnnxFeature::Hour => Source::Hour,
                    OnnxFeature::History => Source::History,
                })
                .collect()
        })
        .collect();
    (items, users, sources)
}

/// `columns` of `table` as row-major `f32` (`rows × columns`), nulls and missing rows 0.
fn values(
    table: Option<&RecordBatch>,
    rows: usize,
    columns: &[String],
    what: &str,
) -> Result<Vec<f32>> {
    let mut out = vec![0f32; rows * columns.len()];
    if columns.is_empty() {
        return Ok(out);
    }
    let table = table.ok_or_else(|| {
        Error::invalid(
            what,
            format!("the ONNX model reads {what}, which the file does not declare"),
        )
    })?;
    for (k, name) in columns.iter().enumerate() {
        let column = table
            .column_by_name(name)
            .ok_or_else(|| Error::invalid(what, format!("`{name}` is not a column of `{what}`")))?;
        let numbers = cast(column, &DataType::Float64)
            .map_err(|e| Error::invalid(what, format!("column `{name}` is not a number: {e}")))?;
        let numbers = numbers.as_primitive::<Float64Type>();
        for r in 0..numbers.len().min(rows) {
            if numbers.is_valid(r) {
                out[r * columns.len() + k] = numbers.value(r) as f32;
            }
        }
    }
    Ok(out)
}

impl Policy for Onnx {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// The model file (ONNX Runtime holds its graph and weights, about once more while it
    /// optimises) and the feature tables.
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let file = self
            .file
            .as_ref()
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len());
        let (items, users, _) = layout(&self.config);
        let (n_items, n_users) = data.map_or((0, 0), |d| (d.n_items(), d.n_users()));
        let mut e = MemoryEstimate::new(data.is_some());
        e.bytes("the model", 3.0 * file as f64, &[]);
        e.floats(
            "feature tables",
            (n_items * items.len() + n_users * users.len()) as f64,
            &[],
        );
        Ok(e)
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let c = &self.config;
        let bytes = self.bytes()?;
        let session = runtime::session(&bytes)
            .map_err(|m| Error::invalid(format!("policies.{}.file", c.name), m))?;
        signature::check(c, &session).map_err(|(field, message, hint)| {
            let e = Error::invalid(format!("policies.{}.{field}", c.name), message);
            match hint {
                Some(h) => e.with_hint(h),
                None => e,
            }
        })?;
        let ds = data.ds;
        let (item_columns, user_columns, _) = layout(c);
        let state = State {
            heads: c.outputs.iter().map(|o| o.name.clone()).collect(),
            item_columns,
            user_columns,
            n_items: ds.n_items(),
            n_users: ds.n_users(),
        };
        let item_values = values(
            ds.item_attributes.as_ref(),
            state.n_items,
            &state.item_columns,
            "fetch.items",
        )?;
        let user_values = values(
            ds.user_attributes.as_ref(),
            state.n_users,
            &state.user_columns,
            "fetch.users",
        )?;
        (ctx.log)(format!(
            "{}: {} ({} bytes) checked against its {} inputs and {} heads; it reads {} item and {} user columns",
            c.name,
            c.file,
            bytes.len(),
            c.inputs.len(),
            c.outputs.len(),
            state.item_columns.len(),
            state.user_columns.len()
        ));
        Ok(Box::new(TrainedOnnx::new(
            c.clone(),
            bytes,
            session,
            state,
            item_values,
            user_values,
        )))
    }
}

pub struct TrainedOnnx {
    config: OnnxConfig,
    bytes: Vec<u8>,
    /// ONNX Runtime's `run` takes the session mutably; requests take turns (each is one batch).
    session: Mutex<Session>,
    sources: Vec<Vec<Source>>,
    state: State,
    item_values: Vec<f32>,
    user_values: Vec<f32>,
}

impl TrainedOnnx {
    fn new(
        config: OnnxConfig,
        bytes: Vec<u8>,
        session: Session,
        state: State,
        item_values: Vec<f32>,
        user_values: Vec<f32>,
    ) -> Self {
        let (_, _, sources) = layout(&config);
        Self {
            config,
            bytes,
            session: Mutex::new(session),
            sources,
            state,
            item_values,
            user_values,
        }
    }

    pub fn load(config: &OnnxConfig, dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).ctx(|| format!("reading {}", path.display()))
        };
        let state: State = serde_json::from_slice(&read(STATE)?).map_err(|e| {
            Error::Internal(format!("{} is corrupt: {e}", dir.join(STATE).display()))
        })?;
        let bytes = read(MODEL)?;
        let session = runtime::session(&bytes).map_err(|m| {
            Error::invalid(
                format!("policies.{}", config.name),
                format!("{}: {m}", dir.join(MODEL).display()),
            )
        })?;
        let item_values = store::read_f32s(&dir.join(ITEM_VALUES))?;
        let user_values = store::read_f32s(&dir.join(USER_VALUES))?;
        Ok(Self::new(
            config.clone(),
            bytes,
            session,
            state,
            item_values,
            user_values,
        ))
    }

    /// The heads' outputs, head-major (`heads × items`), for `items` of `user` in `context`.
    fn run(
        &self,
        user: Option<u32>,
        context: &RankContext<'_>,
        items: &[u32],
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        let n = items.len();
        if n == 0 {
            return Ok(());
        }
        let (ni, nu) = (self.state.item_columns.len(), self.state.user_columns.len());
        let user = user.filter(|&u| (u as usize) < self.state.n_users);
        let hour = context.now.rem_euclid(86_400) as f32 / 3600.0;
        let history = context.seen.len() as f32;
        let mut feeds: Vec<(std::borrow::Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(self.sources.len());
        for (input, sources) in self.config.inputs.iter().zip(&self.sources) {
            let width = sources.len();
            let mut data = vec![0f32; n * width];
            for (r, &item) in items.iter().enumerate() {
                let row = &mut data[r * width..(r + 1) * width];
                for (v, source) in row.iter_mut().zip(sources) {
                    *v = match *source {
                        Source::Item(k) if (item as usize) < self.state.n_items => {
                            self.item_values[item as usize * ni + k]
                        }
                        Source::User(k) => {
                            user.map_or(0.0, |u| self.user_values[u as usize * nu + k])
                        }
                        Source::Hour => hour,
                        Source::History => history,
                        Source::Item(_) => 0.0,
                    };
                }
            }
            let tensor = Tensor::from_array(([n, width], data)).map_err(|e| e.to_string())?;
            feeds.push((input.name.as_str().into(), tensor.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session.run(feeds).map_err(|e| e.to_string())?;
        for (h, head) in self.config.outputs.iter().enumerate() {
            let value = outputs
                .get(head.output.as_str())
                .ok_or_else(|| format!("no output `{}`", head.output))?;
            let (_, scores) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("output `{}`: {e}", head.output))?;
            if scores.len() != n {
                return Err(format!(
                    "output `{}` has {} values for {n} candidates",
                    head.output,
                    scores.len()
                ));
            }
            out[h * n..(h + 1) * n].copy_from_slice(scores);
        }
        Ok(())
    }

    fn scores(&self, user: Option<u32>, context: &RankContext<'_>, items: &[u32], out: &mut [f32]) {
        if let Err(message) = self.run(user, context, items, out) {
            // The file was checked against its declaration when the version was built, so this
            // is ONNX Runtime failing on a request; its candidates score nothing.
            tracing::error!(policy = %self.config.name, "ONNX Runtime failed: {message}");
            out.fill(0.0);
        }
    }
}

impl Scorer for TrainedOnnx {
    fn n_items(&self) -> usize {
        self.state.n_items
    }

    /// The first head over every item, without a request's context.
    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        let n = self.state.n_items;
        let items: Vec<u32> = (0..n as u32).collect();
        let mut all = vec![0f32; self.state.heads.len() * n];
        for (k, &u) in users.iter().enumerate() {
            self.scores(Some(u), &RankContext::default(), &items, &mut all);
            out[k * n..(k + 1) * n].copy_from_slice(&all[..n]);
        }
    }
}

impl TrainedPolicy for TrainedOnnx {
    fn kind(&self) -> &'static str {
        "onnx"
    }

    /// Nothing was learned from the data: a longer history changes only what the inputs read
    /// at serving.
    fn refit(&mut self, _data: Interactions<'_>) -> Result<()> {
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        store::write_atomic(&dir.join(MODEL), &self.bytes)?;
        let state =
            serde_json::to_vec_pretty(&self.state).map_err(|e| Error::Internal(e.to_string()))?;
        store::write_atomic(&dir.join(STATE), &state)?;
        store::write_f32s(&dir.join(ITEM_VALUES), &self.item_values)?;
        store::write_f32s(&dir.join(USER_VALUES), &self.user_values)
    }

    fn heads(&self) -> Vec<String> {
        self.state.heads.clone()
    }

    fn score_heads(&self, user: u32, items: &[u32], out: &mut [f32]) {
        self.scores(Some(user), &RankContext::default(), items, out)
    }

    fn reads_context(&self) -> bool {
        true
    }

    fn score_heads_in(
        &self,
        user: Option<u32>,
        context: &RankContext<'_>,
        items: &[u32],
        out: &mut [f32],
    ) {
        self.scores(user, context, items, out)
    }
}
