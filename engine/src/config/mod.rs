//! The model file: strict parsing (`raw`), field locations (`locate`) and the semantic checks
//! that turn it into a [`ModelConfig`] (`resolve`). Parsing never starts work: fetch SQL is only
//! planned later, by [`crate::fetch::plan`].

pub mod experiments;
mod key;
mod locate;
mod onnx;
mod outputs;
mod ranker;
mod raw;
pub(crate) mod resolve;
pub mod tuning;

pub use locate::Locations;
pub use onnx::OnnxFeature;
pub use outputs::{output_name, OutputError, SINGLE_HEAD};
pub(crate) use raw::defaults as raw_defaults;
pub use raw::{
    AlsConfig, Architecture, CalibrationKind, DefaultParam, Device, EventsConfig, FeatureKind,
    FeatureSpec, FitConfig, HeadConfig, IndexConfig, IndexType, MultiTaskConfig, OnnxConfig,
    OnnxInput, OnnxOutput, PolicyConfig, PopularConfig, PositionConfig, PositionEffect,
    RawModelFile, SasrecConfig, SavedQuery, SequenceLoss, SequenceWindows, ServingConfig,
    TrainingConfig, TwoTowerConfig, TypedFeature, ValueModelConfig, IMPRESSION,
};
pub use resolve::{
    parse, parse_bytes, plain_words, Combine, FetchLimits, ModelConfig, Saved, ValueModel, Weight,
};

/// The JSON Schema of the model file, generated from the Rust types (`spec/model.schema.json`).
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawModelFile)).expect("schema serialises")
}
