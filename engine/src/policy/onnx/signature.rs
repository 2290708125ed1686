//! An ONNX file against its declaration: every graph input fed, each with the number of
//! columns its features fill, every head's output there and one number per candidate; and the
//! columns the features name present in the fetch, as numbers. A mismatch names both sides.

use datafusion::arrow::datatypes::{DataType, Schema};
use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::config::{ModelConfig, OnnxConfig, OnnxFeature};

/// A mismatch: the field of the policy block, what is wrong, and what to do.
pub type Mismatch = (String, String, Option<String>);

/// `c`'s file opened and compared with its declaration (what `validate` and `create-model` run
/// before any version exists).
pub fn check_file(model: &ModelConfig, c: &OnnxConfig) -> Result<(), Mismatch> {
    let path = model
        .onnx_file(c)
        .map_err(|m| ("file".to_string(), m, None))?;
    let bytes = std::fs::read(&path).map_err(|e| {
        (
            "file".to_string(),
            format!("cannot read {}: {e}", path.display()),
            Some("export the model there, or fix the path (relative to the model file)".into()),
        )
    })?;
    let session = super::runtime::session(&bytes).map_err(|m| {
        let hint = m
            .contains("not found")
            .then(|| format!("python3 -m pip install {}", super::runtime::WHEEL));
        ("file".to_string(), format!("{}: {m}", c.file), hint)
    })?;
    check(c, &session)
}

/// A graph's type in ONNX's words: `float32 [-1, 3]` (−1: any size).
fn describe(t: &ValueType) -> String {
    match t {
        ValueType::Tensor { ty, shape, .. } => {
            let ty = match ty {
                TensorElementType::Float32 => "float32".to_string(),
                TensorElementType::Float64 => "float64".to_string(),
                TensorElementType::Int32 => "int32".to_string(),
                TensorElementType::Int64 => "int64".to_string(),
                TensorElementType::String => "string".to_string(),
                TensorElementType::Bool => "bool".to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            format!("{ty} {:?}", &shape[..])
        }
        other => other.to_string(),
    }
}

/// The inputs and outputs of `session` against `c`.
pub(super) fn check(c: &OnnxConfig, session: &Session) -> Result<(), Mismatch> {
    let file = &c.file;
    let graph_inputs: Vec<String> = session
        .inputs()
        .iter()
        .map(|i| format!("`{}` ({})", i.name(), describe(i.dtype())))
        .collect();
    for (k, input) in c.inputs.iter().enumerate() {
        let Some(outlet) = session.inputs().iter().find(|o| o.name() == input.name) else {
            return Err((
                format!("inputs[{k}].name"),
                format!("`{file}` has no input `{}`", input.name),
                Some(format!("its inputs: {}", graph_inputs.join(", "))),
            ));
        };
        let width = input.features.len() as i64;
        let fits = match outlet.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                *ty == TensorElementType::Float32
                    && shape.len() == 2
                    && (shape[1] == width || shape[1] < 0)
            }
            _ => false,
        };
        if !fits {
            return Err((
                format!("inputs[{k}].features"),
                format!(
                    "input `{}` of `{file}` is {}, and the policy feeds float32 [batch, {width}] ({})",
                    input.name,
                    describe(outlet.dtype()),
                    input.features.join(", ")
                ),
                Some("list one feature per column of the input, in its order; Feed feeds float32 [candidates, features]".into()),
            ));
        }
    }
    if let Some(unfed) = session
        .inputs()
        .iter()
        .find(|o| !c.inputs.iter().any(|i| i.name == o.name()))
    {
        return Err((
            "inputs".to_string(),
            format!(
                "input `{}` ({}) of `{file}` is not fed",
                unfed.name(),
                describe(unfed.dtype())
            ),
            Some(format!(
                "declare it: `- {{name: {}, features: [...]}}`",
                unfed.name()
            )),
        ));
    }
    for (h, head) in c.outputs.iter().enumerate() {
        let Some(outlet) = session.outputs().iter().find(|o| o.name() == head.output) else {
            let outputs: Vec<String> = session
                .outputs()
                .iter()
                .map(|o| format!("`{}` ({})", o.name(), describe(o.dtype())))
                .collect();
            return Err((
                format!("outputs[{h}].output"),
                format!("`{file}` has no output `{}`", head.output),
                Some(format!("its outputs: {}", outputs.join(", "))),
            ));
        };
        let fits = match outlet.dtype() {
            ValueType::Tensor { ty, shape, .. } => {
                *ty == TensorElementType::Float32
                    && (shape.len() == 1 || (shape.len() == 2 && shape[1] == 1))
            }
            _ => false,
        };
        if !fits {
            return Err((
                format!("outputs[{h}].output"),
                format!(
                    "output `{}` of `{file}` is {}; a head reads one float32 per candidate ([batch] or [batch, 1])",
                    head.output,
                    describe(outlet.dtype())
                ),
                None,
            ));
        }
    }
    Ok(())
}

/// The item and user columns `c`'s features name are numbers (or booleans) in what the fetch
/// yields (`items`, `users`: the schemas of `fetch.items` and `fetch.users`, when declared).
pub fn check_columns(
    c: &OnnxConfig,
    items: Option<&Schema>,
    users: Option<&Schema>,
) -> Result<(), Mismatch> {
    for (k, (input, features)) in c.inputs.iter().zip(c.features()).enumerate() {
        for (f, feature) in features.iter().enumerate() {
            let (column, schema, fetch) = match feature {
                OnnxFeature::Item(column) => (column, items, "fetch.items"),
                OnnxFeature::User(column) => (column, users, "fetch.users"),
                OnnxFeature::Hour | OnnxFeature::History => continue,
            };
            let at = format!("inputs[{k}].features[{f}]");
            let Some(schema) = schema else {
                return Err((
                    at,
                    format!(
                        "`{}` reads `{fetch}`, which the file does not declare",
                        input.features[f]
                    ),
                    Some(format!("declare `{fetch}`")),
                ));
            };
            let Ok(field) = schema.field_with_name(column) else {
                let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                let hint = crate::did_you_mean(column, names.iter().copied())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| format!("`{fetch}` yields: {}", names.join(", ")));
                return Err((
                    at,
                    format!("`{column}` is not a column of `{fetch}`"),
                    Some(hint),
                ));
            };
            let t = field.data_type();
            if !(t.is_numeric() || *t == DataType::Boolean) {
                return Err((
                    at,
                    format!(
                        "column `{column}` of `{fetch}` is {t}, and an ONNX input takes numbers"
                    ),
                    Some(format!(
                        "cast it in the fetch SQL (`CAST({column} AS DOUBLE)`), or encode it there"
                    )),
                ));
            }
        }
    }
    Ok(())
}
