//! The model file as written: strict serde structs (unknown keys are errors). These types also
//! generate the JSON Schema in `spec/model.schema.json`. Nothing here starts work.

use std::collections::BTreeMap;

use feed_connectors::ConnectorConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A Feed model file.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModelFile {
    /// The model's name and description.
    pub model: RawModelMeta,
    /// Where the data lives; each connector registers one table named by its `id`.
    pub connectors: Vec<ConnectorConfig>,
    /// The SQL (one SELECT each) that reads events, items and users from the connectors.
    pub fetch: RawFetch,
    /// The models to train. Each has a unique `name`, used by the value model and queries.
    pub policies: Vec<PolicyConfig>,
    /// How to train and evaluate.
    #[serde(default)]
    pub training: TrainingConfig,
    /// How policy outputs combine into one ranking score.
    #[serde(default)]
    pub value_model: Option<ValueModelConfig>,
    /// Saved FeedQL queries, by name: the text, or `{query, params}` with parameter defaults.
    #[serde(default)]
    pub queries: BTreeMap<String, SavedQuery>,
    /// Serving options.
    #[serde(default)]
    pub serving: ServingConfig,
    /// Live events: what `POST /models/{name}/events` accepts and what counts as an interaction.
    #[serde(default)]
    pub events: EventsConfig,
}

/// The type of the events `serving.log_impressions` writes: one per served item.
pub const IMPRESSION: &str = "impression";

/// The event types live ingest accepts, and which of them are interactions: items the user
/// has seen (`NOT seen()`, `rank`'s exclusions) and their history (the `history` encoder).
/// Other types (`hide`, `impression`) are recorded but change neither.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Accepted types (`[click, like, purchase, hide, impression]`); by default any.
    #[serde(default)]
    pub types: Vec<String>,
    /// The accepted types that are interactions; by default every accepted type.
    #[serde(default)]
    pub interactions: Option<Vec<String>>,
    /// How long logged events are kept (`90d`, `12w`): older ones are deleted when the log is
    /// compacted and no longer train new versions. By default, kept for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<String>,
}

impl EventsConfig {
    /// `retention` in seconds (checked when the file is read).
    pub fn retention_seconds(&self) -> Option<i64> {
        self.retention
            .as_deref()
            .and_then(crate::util::window::window_seconds)
    }

    /// Whether ingest accepts `kind`.
    pub fn accepts(&self, kind: &str) -> bool {
        self.types.is_empty() || self.types.iter().any(|t| t == kind)
    }

    /// Whether an event of `kind` is an interaction. The impressions serving logs
    /// ([`IMPRESSION`]) are one only when `interactions` names them.
    pub fn is_interaction(&self, kind: &str) -> bool {
        match &self.interactions {
            Some(list) => list.iter().any(|t| t == kind),
            None => kind != IMPRESSION && self.accepts(kind),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawModelMeta {
    /// `[a-z0-9_]+`; the model's identity in the registry, the CLI and the HTTP API.
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFetch {
    /// Must yield `user_id`, `item_id`, `timestamp` (integer seconds or a timestamp type); may
    /// yield `event_type` (text) and `value` (number).
    pub events: String,
    /// Must yield `item_id`; every other column is an item attribute.
    #[serde(default)]
    pub items: Option<String>,
    /// Must yield `user_id`; every other column is a user attribute.
    #[serde(default)]
    pub users: Option<String>,
    /// What was shown to whom: must yield `user_id`, `item_id`, `timestamp`; may yield
    /// `position` (1 = first shown), `request_id`, and label columns that `multi_task` heads
    /// name (`rating >= 4 AS like`). What rankers train on.
    #[serde(default)]
    pub impressions: Option<String>,
    /// The most memory the fetch may use, e.g. `2GB`, `512MB` (the SQL's operators and the
    /// events read); by default half of the machine's memory. A fetch that needs more fails
    /// its version (the ACTIVE one keeps serving).
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// The longest the fetch may run, in seconds (default 3600).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Where the fetch SQL runs: `local` (this process, the default) or `ballista` (the
    /// Apache Ballista cluster whose scheduler `scheduler` names). Both give the same rows in the
    /// same order, so the same dataset.
    #[serde(default)]
    pub engine: Option<FetchEngine>,
    /// The Ballista scheduler, `df://host:port` (with `engine: ballista`); `${NAME}` reads it
    /// from the environment. Its executors read the `type: file` connectors' paths themselves.
    #[serde(default)]
    pub scheduler: Option<String>,
}

/// Where the fetch SQL runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FetchEngine {
    /// In this process, reading file partitions in parallel.
    Local,
    /// On an Apache Ballista cluster.
    Ballista,
}

/// One policy; `type` picks the algorithm.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PolicyConfig {
    /// Most interacted items, optionally within a window and with time decay.
    Popular(PopularConfig),
    /// Implicit-feedback matrix factorisation (alternating least squares).
    Als(AlsConfig),
    /// Causal self-attention over each user's latest items (Kang & McAuley 2018), trained with
    /// full-softmax cross-entropy by default (Klenitskiy & Vasilev 2023).
    Sasrec(SasrecConfig),
    /// A user tower and an item tower over ids and declared features, trained with in-batch
    /// softmax (Yi et al. 2019); items without events get vectors from their features.
    TwoTower(TwoTowerConfig),
    /// A ranker over impressions: one probability per declared engagement (its heads) from the
    /// user, the item, the user's history and the context, through a shared bottom or a mixture
    /// of experts (Ma et al. 2018); position is an input only while training (Zhao et al. 2019).
    MultiTask(MultiTaskConfig),
    /// A model trained elsewhere, scored through ONNX Runtime: named inputs fed from the user's
    /// and the candidate's columns and the request, named outputs read as heads.
    Onnx(OnnxConfig),
}

impl PolicyConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Popular(c) => &c.name,
            Self::Als(c) => &c.name,
            Self::Sasrec(c) => &c.name,
            Self::TwoTower(c) => &c.name,
            Self::MultiTask(c) => &c.name,
            Self::Onnx(c) => &c.name,
        }
    }

    /// Whether it yields user and item vectors (similarity retrieval, diversity).
    pub fn has_vectors(&self) -> bool {
        matches!(self, Self::Als(_) | Self::Sasrec(_) | Self::TwoTower(_))
    }

    /// Whether it trains a network (and may use a GPU).
    pub fn is_neural(&self) -> bool {
        matches!(
            self,
            Self::Sasrec(_) | Self::TwoTower(_) | Self::MultiTask(_)
        )
    }

    /// Whether it ranks impressions (per-head probabilities) rather than retrieving from the
    /// catalog: it is evaluated per head on held-out impressions, not by full ranking.
    pub fn is_ranker(&self) -> bool {
        matches!(self, Self::MultiTask(_) | Self::Onnx(_))
    }

    /// Its `tuning:` block, if it has one.
    pub fn tuning(&self) -> Option<&super::tuning::TuningConfig> {
        match self {
            Self::Popular(c) => c.tuning.as_ref(),
            Self::Als(c) => c.tuning.as_ref(),
            Self::Sasrec(c) => c.tuning.as_ref(),
            Self::TwoTower(c) => c.tuning.as_ref(),
            Self::MultiTask(_) | Self::Onnx(_) => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Popular(_) => "popular",
            Self::Als(_) => "als",
            Self::Sasrec(_) => "sasrec",
            Self::TwoTower(_) => "two_tower",
            Self::MultiTask(_) => "multi_task",
            Self::Onnx(_) => "onnx",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PopularConfig {
    pub name: String,
    /// Count only events of the last N days before the newest event.
    #[serde(default)]
    pub window_days: Option<f64>,
    /// Weight each event by 0.5^(age / half_life_days).
    #[serde(default)]
    pub half_life_days: Option<f64>,
    /// A search over this policy's fields before it trains (see `TuningConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<super::tuning::TuningConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlsConfig {
    pub name: String,
    /// Vector dimension.
    #[serde(default = "defaults::factors")]
    pub factors: usize,
    /// L2 regularisation (lambda).
    #[serde(default = "defaults::regularization")]
    pub regularization: f32,
    /// Confidence per interaction: c = 1 + alpha * count.
    #[serde(default = "defaults::alpha")]
    pub alpha: f32,
    /// Alternating passes over users and items.
    #[serde(default = "defaults::iterations")]
    pub iterations: usize,
    /// Conjugate-gradient steps per least-squares solve (warm-started).
    #[serde(default = "defaults::cg_steps")]
    pub cg_steps: usize,
    /// A search over this policy's fields before it trains (see `TuningConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<super::tuning::TuningConfig>,
}

/// `type: sasrec`. The defaults are those of Klenitskiy & Vasilev (RecSys 2023) for MovieLens-1M,
/// whose SASRec with full softmax reports NDCG@10 0.1821.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SasrecConfig {
    pub name: String,
    /// The latest items of a user the encoder reads (older ones are dropped).
    #[serde(default = "defaults::max_seq_len")]
    pub max_seq_len: usize,
    /// Embedding and hidden size: the dimension of the item and user vectors.
    #[serde(default = "defaults::hidden")]
    pub hidden: usize,
    /// Self-attention blocks.
    #[serde(default = "defaults::layers")]
    pub layers: usize,
    /// Attention heads per block; must divide `hidden`.
    #[serde(default = "defaults::heads")]
    pub heads: usize,
    /// Dropout on embeddings, attention weights and feed-forward outputs while training.
    #[serde(default = "defaults::dropout")]
    pub dropout: f64,
    /// `full_softmax` (cross-entropy over every item: the best quality), `sampled_softmax`
    /// (against `negatives` random items: for large catalogs) or `bce` (one random negative, as
    /// in the original paper).
    #[serde(default)]
    pub loss: SequenceLoss,
    /// Random negatives per batch for `sampled_softmax` (default 256).
    #[serde(default)]
    pub negatives: Option<usize>,
    /// What a user's history gives training: `latest` (its latest `max_seq_len + 1` items, one
    /// sequence per user, as the reference implementation) or `all` (the whole history, cut into
    /// consecutive windows of `max_seq_len + 1` items ending at the latest, so that every item
    /// after the first is a target once: more data from long histories).
    #[serde(default)]
    pub windows: SequenceWindows,
    /// The most passes over the training data.
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    /// Stop after this many epochs without a better validation NDCG@10 (the best epoch's
    /// weights are kept); 0 trains all `epochs`.
    #[serde(default = "defaults::patience")]
    pub patience: usize,
    /// Sequences per optimiser step.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW); 0 is plain Adam. Explicit, because burn's default (1e-4)
    /// differs from PyTorch's.
    #[serde(default)]
    pub weight_decay: f64,
    /// AdamW's epsilon; PyTorch's default (burn's is 1e-5).
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f64,
    /// The learning rate is multiplied by this after each epoch (1: constant). A decaying rate
    /// ends on smaller steps, so the kept epoch depends less on the seed's last batches.
    #[serde(default = "defaults::learning_rate_decay")]
    pub learning_rate_decay: f64,
    /// A search over this policy's fields before it trains (see `TuningConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<super::tuning::TuningConfig>,
}

/// `type: two_tower`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TwoTowerConfig {
    pub name: String,
    /// Embedding size and the dimension of the user and item vectors.
    #[serde(default = "defaults::hidden")]
    pub hidden: usize,
    /// Columns of `fetch.users` the user tower reads.
    #[serde(default)]
    pub user_features: Vec<FeatureSpec>,
    /// Columns of `fetch.items` the item tower reads.
    #[serde(default)]
    pub item_features: Vec<FeatureSpec>,
    /// The user tower averages the embeddings of the user's latest this-many items (0: none).
    #[serde(default = "defaults::tower_history")]
    pub history: usize,
    /// Softmax temperature over cosine similarities.
    #[serde(default = "defaults::temperature")]
    pub temperature: f64,
    /// Random items added to each batch's in-batch negatives.
    #[serde(default)]
    pub negatives: usize,
    /// Subtract log(sampling probability) from in-batch logits, so popular items are not
    /// over-penalised for being frequent negatives.
    #[serde(default = "defaults::yes")]
    pub logq_correction: bool,
    /// Share of training examples whose item-id embedding is hidden, so the item tower also
    /// learns to place items from their features alone (cold start).
    #[serde(default = "defaults::id_dropout")]
    pub id_dropout: f64,
    #[serde(default = "defaults::tower_epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::tower_patience")]
    pub patience: usize,
    /// Interactions per optimiser step (and so in-batch negatives per example).
    #[serde(default = "defaults::tower_batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::learning_rate")]
    pub learning_rate: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f64,
    /// The learning rate is multiplied by this after each epoch (1: constant). A decaying rate
    /// ends on smaller steps, so the kept epoch depends less on the seed's last batches.
    #[serde(default = "defaults::learning_rate_decay")]
    pub learning_rate_decay: f64,
    /// A search over this policy's fields before it trains (see `TuningConfig`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<super::tuning::TuningConfig>,
}

/// `fit()` for each neural policy's config: the optimiser keys are repeated in each struct (serde
/// cannot deny unknown keys through a flattened struct), so one accessor gathers them.
macro_rules! fit_accessor {
    ($($config:ty),+) => {$(
        impl $config {
            pub fn fit(&self) -> FitConfig {
                FitConfig {
                    epochs: self.epochs,
                    patience: self.patience,
                    batch_size: self.batch_size,
                    learning_rate: self.learning_rate,
                    weight_decay: self.weight_decay,
                    epsilon: self.epsilon,
                    learning_rate_decay: self.learning_rate_decay,
                }
            }
        }
    )+};
}
fit_accessor!(SasrecConfig, TwoTowerConfig, MultiTaskConfig);

/// `type: multi_task`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MultiTaskConfig {
    pub name: String,
    /// The engagements it predicts, one probability each (`ranker.like`).
    pub heads: Vec<HeadConfig>,
    #[serde(default)]
    pub architecture: Architecture,
    /// Experts of `architecture: mmoe`.
    #[serde(default = "defaults::experts")]
    pub experts: usize,
    /// Width of the hidden layers.
    #[serde(default = "defaults::ranker_hidden")]
    pub hidden: usize,
    /// Size of the id and feature-value embeddings.
    #[serde(default = "defaults::ranker_embedding")]
    pub embedding: usize,
    /// Columns of `fetch.users` it reads.
    #[serde(default)]
    pub user_features: Vec<FeatureSpec>,
    /// Columns of `fetch.items` it reads.
    #[serde(default)]
    pub item_features: Vec<FeatureSpec>,
    /// Item columns whose share in the user's earlier events is an input (`[author, topic]`:
    /// how much of what the user engaged with before came from this item's author).
    #[serde(default)]
    pub affinity: Vec<String>,
    /// Retrieval policies of the model whose score for the (user, item) pair is an input
    /// (`[als]`). Each training row reads a fit that never saw the pair's own events (the
    /// policy is fitted again on four folds of the pairs before the test period), as a
    /// candidate at serving is scored by the deployed policy without having been engaged with.
    #[serde(default)]
    pub scores: Vec<String>,
    /// The hour of the day of the impression (UTC) as an input.
    #[serde(default = "defaults::yes")]
    pub hour_of_day: bool,
    /// Position as a training-only input: its effect is learned apart and fixed to `serve_at`
    /// when serving, so that it does not leak into the ranking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<PositionConfig>,
    /// How each head's probability is calibrated on the validation impressions.
    #[serde(default)]
    pub calibration: CalibrationKind,
    /// Shares of the impressions, newest last, held out for validation and test.
    #[serde(default = "defaults::holdout")]
    pub validation_share: f64,
    #[serde(default = "defaults::holdout")]
    pub test_share: f64,
    /// An `event:` head counts an event within this many seconds after the impression.
    #[serde(default = "defaults::attribution_seconds")]
    pub attribution_seconds: u64,
    #[serde(default)]
    pub dropout: f64,
    /// L2 penalty on the id embeddings of each training row, so that an id keeps what its
    /// features cannot explain only when its data insist.
    #[serde(default)]
    pub id_l2: f64,
    #[serde(default = "defaults::ranker_epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::tower_patience")]
    pub patience: usize,
    #[serde(default = "defaults::ranker_batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::ranker_learning_rate")]
    pub learning_rate: f64,
    #[serde(default)]
    pub weight_decay: f64,
    #[serde(default = "defaults::epsilon")]
    pub epsilon: f64,
    /// The learning rate is multiplied by this after each epoch (1: constant). A decaying rate
    /// ends on smaller steps, so the kept epoch depends less on the seed's last batches.
    #[serde(default = "defaults::learning_rate_decay")]
    pub learning_rate_decay: f64,
}

/// `type: onnx`: a model trained elsewhere (PyTorch, XGBoost, scikit-learn through their ONNX
/// exporters), scored through ONNX Runtime. Each input is a `float32` tensor `[batch, n]` with
/// one row per candidate, its `n` columns the listed features in order; each head reads one
/// output, `[batch]` or `[batch, 1]`. It is not trained: the file is checked against these
/// declarations and copied into the version.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnnxConfig {
    pub name: String,
    /// The `.onnx` file, relative to the model file's folder (under the data roots).
    pub file: String,
    pub inputs: Vec<OnnxInput>,
    /// The heads, each named for the value model (`ext.like`) and read from one output.
    pub outputs: Vec<OnnxOutput>,
}

/// One input of an ONNX model and the features that fill its columns.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnnxInput {
    /// The input's name in the ONNX graph.
    pub name: String,
    /// In column order: `item.<column>` (a number of `fetch.items`), `user.<column>` (of
    /// `fetch.users`; 0 for a user the version does not know), `hour` (of the request, UTC,
    /// 0–24) or `history` (how many items the user has interacted with). A null is 0.
    pub features: Vec<String>,
}

/// One head of an ONNX model: its name in Feed and the graph output it reads.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnnxOutput {
    pub name: String,
    /// The output's name in the ONNX graph.
    pub output: String,
}

/// One head of a ranker: what counts as the engagement, from the events (`event: like`) or from
/// a label column of `fetch.impressions` (`label: like`, or `label: dwell_seconds` with
/// `threshold: 30`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeadConfig {
    pub name: String,
    /// An event of this type by the user on the item, within `attribution_seconds` after the
    /// impression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// A column of `fetch.impressions`: boolean, or a number (engaged when not 0, or when at
    /// least `threshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The head's weight in the training loss.
    #[serde(default = "defaults::one")]
    pub weight: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// One network shared by every head, a linear output per head.
    #[default]
    SharedBottom,
    /// Experts mixed per head by its own gate (Ma et al., KDD 2018).
    Mmoe,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionConfig {
    /// The column of `fetch.impressions` with the position (1 = first).
    #[serde(default = "defaults::position_column")]
    pub column: String,
    /// The position every candidate is scored at when serving.
    #[serde(default = "defaults::serve_at")]
    pub serve_at: u32,
    /// How position acts on the heads while training.
    #[serde(default)]
    pub effect: PositionEffect,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PositionEffect {
    /// A probability of being seen per position, shared by the heads, that multiplies each
    /// head's probability had the item been seen (Guo et al., PAL, RecSys 2019).
    #[default]
    Examination,
    /// A bias per position and head added to the head's logit (Zhao et al., RecSys 2019).
    Bias,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationKind {
    /// A monotone step function (pool adjacent violators).
    #[default]
    Isotonic,
    /// A logistic fit of the logit (Platt scaling).
    Platt,
    None,
}

/// A feature column: its name (the kind inferred: numbers are numeric, text with `|` is
/// multi-valued, other text categorical) or `{column, kind}`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum FeatureSpec {
    Column(String),
    Typed(TypedFeature),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedFeature {
    pub column: String,
    pub kind: FeatureKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// Standardised number (missing: the mean).
    Numeric,
    /// One value per row, each value its own embedding.
    Categorical,
    /// `|`-separated values (genres), their embeddings averaged.
    Multi,
}

impl FeatureSpec {
    pub fn column(&self) -> &str {
        match self {
            Self::Column(c) => c,
            Self::Typed(t) => &t.column,
        }
    }

    pub fn kind(&self) -> Option<FeatureKind> {
        match self {
            Self::Column(_) => None,
            Self::Typed(t) => Some(t.kind),
        }
    }
}

/// How a neural policy is optimised: AdamW over shuffled mini-batches, with early stopping on
/// validation NDCG@10. (The fields are repeated in each policy's block: serde cannot deny
/// unknown keys through a flattened struct.)
#[derive(Debug, Clone, PartialEq)]
pub struct FitConfig {
    pub epochs: usize,
    pub patience: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub epsilon: f64,
    /// Per-epoch factor on the learning rate.
    pub learning_rate_decay: f64,
}

/// SASRec's training sequences per user (`windows`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SequenceWindows {
    #[default]
    Latest,
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SequenceLoss {
    #[default]
    FullSoftmax,
    SampledSoftmax,
    Bce,
}

pub(crate) mod defaults {
    pub fn max_seq_len() -> usize {
        200
    }
    pub fn hidden() -> usize {
        64
    }
    pub fn layers() -> usize {
        2
    }
    pub fn heads() -> usize {
        1
    }
    pub fn dropout() -> f64 {
        0.1
    }
    pub fn tower_history() -> usize {
        50
    }
    pub fn temperature() -> f64 {
        0.05
    }
    pub fn yes() -> bool {
        true
    }
    pub fn id_dropout() -> f64 {
        0.1
    }
    pub fn experts() -> usize {
        4
    }
    pub fn ranker_hidden() -> usize {
        64
    }
    pub fn ranker_embedding() -> usize {
        16
    }
    pub fn holdout() -> f64 {
        0.1
    }
    pub fn attribution_seconds() -> u64 {
        86_400
    }
    pub fn ranker_epochs() -> usize {
        10
    }
    pub fn ranker_batch_size() -> usize {
        512
    }
    pub fn learning_rate_decay() -> f64 {
        1.0
    }
    pub fn ranker_learning_rate() -> f64 {
        3e-3
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn position_column() -> String {
        "position".into()
    }
    pub fn serve_at() -> u32 {
        1
    }
    pub fn tower_epochs() -> usize {
        30
    }
    pub fn tower_patience() -> usize {
        3
    }
    pub fn tower_batch_size() -> usize {
        1024
    }
    pub fn negatives() -> usize {
        256
    }
    pub fn epochs() -> usize {
        100
    }
    pub fn patience() -> usize {
        10
    }
    pub fn batch_size() -> usize {
        128
    }
    pub fn learning_rate() -> f64 {
        1e-3
    }
    pub fn epsilon() -> f64 {
        1e-8
    }
    pub fn factors() -> usize {
        64
    }
    pub fn regularization() -> f32 {
        0.05
    }
    pub fn alpha() -> f32 {
        1.0
    }
    pub fn iterations() -> usize {
        15
    }
    pub fn cg_steps() -> usize {
        3
    }
    pub fn seed() -> u64 {
        42
    }
    pub fn max_limit() -> usize {
        1000
    }
    pub fn page_ttl_seconds() -> u64 {
        600
    }
    pub fn index_threshold() -> usize {
        100_000
    }
    pub fn refine_factor() -> usize {
        4
    }
    pub fn target_recall() -> f64 {
        0.97
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingConfig {
    /// Where to train: `auto` (a usable CUDA GPU, else the CPU), `cpu` or `cuda`.
    #[serde(default)]
    pub device: Device,
    /// Seed for every random choice, so that runs on the CPU are reproducible.
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// Evaluate at most this many users (an evenly spaced, deterministic sample); by default
    /// all. Full ranking costs users × items × dimension: cap it for large catalogs.
    #[serde(default)]
    pub eval_users: Option<usize>,
    /// The most memory one policy's training may need (`8GB`, `512MiB`); by default half of
    /// the machine's memory. Each policy's peak is estimated from its settings (at `validate`)
    /// and from the data's shape (after the fetch); a run over the limit is refused with the
    /// estimate and the setting to lower.
    #[serde(default)]
    pub memory_limit: Option<String>,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        Self {
            device: Device::default(),
            seed: defaults::seed(),
            eval_users: None,
            memory_limit: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The value model: either weights over policy outputs or an expression.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueModelConfig {
    /// `<policy>` or `<policy>.<head>` → weight; the score is the weighted sum.
    #[serde(default)]
    pub weights: Option<BTreeMap<String, f64>>,
    /// A score expression (FeedQL score language).
    #[serde(default)]
    pub expression: Option<String>,
    /// `<item column>` → strength in [0, 1]: score × (1 − strength × item.column).
    #[serde(default)]
    pub demotions: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServingConfig {
    /// The policy that `rank` uses when there is no value model; by default the policy with the
    /// best validation NDCG@10.
    #[serde(default)]
    pub policy: Option<String>,
    /// The largest `limit` a request may ask for.
    #[serde(default = "defaults::max_limit")]
    pub max_limit: usize,
    /// How long, in seconds, later pages (OFFSET) of a query continue the ranking its first
    /// page showed, so that no item repeats across pages.
    #[serde(default = "defaults::page_ttl_seconds")]
    pub page_ttl_seconds: u64,
    /// The vector index behind `similarity` retrieval, built at DEPLOYING.
    #[serde(default)]
    pub index: IndexConfig,
    /// Append each served page to the model's event log: one `impression` event per item with
    /// the user, the page's `request_id`, the item's 1-based position and its score. Events that
    /// carry the `request_id` join to it (training data for a ranker, with positions).
    #[serde(default)]
    pub log_impressions: bool,
    /// Traffic splits by a stable hash of the user id (see `config/experiments.rs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<super::experiments::ExperimentConfig>,
}

/// How the item vectors of each vector-producing policy are searched.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    /// `auto` (exact scan below `threshold` items, IVF_SQ8 from it), `exact` or `ivf_sq8`.
    #[serde(default, rename = "type")]
    pub kind: IndexType,
    /// The catalog size from which `auto` builds an ANN index (measured: below it the exact
    /// SIMD scan answers in well under a millisecond).
    #[serde(default = "defaults::index_threshold")]
    pub threshold: usize,
    /// IVF partitions; by default 2√items.
    #[serde(default)]
    pub partitions: Option<usize>,
    /// Partitions probed for k = 10 (larger k and filters probe proportionally further); by
    /// default measured at build time to reach `target_recall`.
    #[serde(default)]
    pub nprobes: Option<usize>,
    /// Candidates re-scored exactly, as a multiple of k.
    #[serde(default = "defaults::refine_factor")]
    pub refine_factor: usize,
    /// The recall@k against exact search that the build tunes the probes for.
    #[serde(default = "defaults::target_recall")]
    pub target_recall: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndexType {
    #[default]
    Auto,
    Exact,
    IvfSq8,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self {
            kind: IndexType::Auto,
            threshold: defaults::index_threshold(),
            partitions: None,
            nprobes: None,
            refine_factor: defaults::refine_factor(),
            target_recall: defaults::target_recall(),
        }
    }
}

impl Default for ServingConfig {
    fn default() -> Self {
        Self {
            policy: None,
            max_limit: defaults::max_limit(),
            page_ttl_seconds: defaults::page_ttl_seconds(),
            index: IndexConfig::default(),
            log_impressions: false,
            experiments: Vec::new(),
        }
    }
}

/// A saved query: its FeedQL text alone, or with default values for its parameters (a request's
/// parameters override them).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SavedQuery {
    Text(String),
    WithDefaults(SavedQueryWithDefaults),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedQueryWithDefaults {
    pub query: String,
    /// Parameter name (without `$`) → default value.
    #[serde(default)]
    pub params: BTreeMap<String, DefaultParam>,
}

/// A parameter default: a string, a number, a boolean or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DefaultParam {
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<DefaultParam>),
}

impl SavedQuery {
    pub fn text(&self) -> &str {
        match self {
            SavedQuery::Text(t) => t,
            SavedQuery::WithDefaults(q) => &q.query,
        }
    }

    pub fn defaults(&self) -> Option<&BTreeMap<String, DefaultParam>> {
        match self {
            SavedQuery::Text(_) => None,
            SavedQuery::WithDefaults(q) => Some(&q.params),
        }
    }
}
