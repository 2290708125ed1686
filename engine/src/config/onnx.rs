//! The checks of an `onnx` block that need no data: the features its inputs name (a small
//! vocabulary, parsed here once), its heads, and where its file lies. The file itself is opened
//! and compared with these declarations when the fetch is planned (`validate`, `create-model`).

// Config errors are a cold path that ends the command; boxing them would only add noise.
#![allow(clippy::result_large_err)]

use std::path::PathBuf;

use super::ranker::MAX_HEADS;
use super::raw::OnnxConfig;
use super::resolve::{check_listed_once, ModelConfig};
use crate::error::ConfigError;

/// One column of an ONNX input, as written in `features`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnnxFeature {
    /// A numeric column of `fetch.items`, for the candidate.
    Item(String),
    /// A numeric column of `fetch.users`, for the requesting user.
    User(String),
    /// The request's hour of day (UTC), 0 to 24.
    Hour,
    /// How many items the user has interacted with.
    History,
}

impl OnnxFeature {
    /// What the `features` list accepts, for hints.
    pub const FORMS: &'static str = "`item.<column>`, `user.<column>`, `hour` or `history`";

    pub fn parse(text: &str) -> Option<Self> {
        match text.split_once('.') {
            Some(("item", c)) if !c.is_empty() => Some(Self::Item(c.to_string())),
            Some(("user", c)) if !c.is_empty() => Some(Self::User(c.to_string())),
            None if text == "hour" => Some(Self::Hour),
            None if text == "history" => Some(Self::History),
            _ => None,
        }
    }
}

impl OnnxConfig {
    /// Each input's features, parsed (the config passed [`check`], so every one parses).
    pub fn features(&self) -> Vec<Vec<OnnxFeature>> {
        self.inputs
            .iter()
            .map(|i| {
                i.features
                    .iter()
                    .filter_map(|f| OnnxFeature::parse(f))
                    .collect()
            })
            .collect()
    }
}

impl ModelConfig {
    /// Where an `onnx` policy's file is, checked to lie under the data roots (a model file
    /// must not read files elsewhere on the machine), or why not.
    pub fn onnx_file(&self, c: &OnnxConfig) -> Result<PathBuf, String> {
        feed_connectors::DataPaths::new(&self.base_dir, &self.data_roots).local_file(&c.file)
    }
}

pub(super) fn check(cfg: &ModelConfig, path: &str, c: &OnnxConfig) -> Result<(), ConfigError> {
    if !c.file.ends_with(".onnx") {
        return Err(cfg.error_at(
            &format!("{path}.file"),
            format!("`{}` is not an `.onnx` file", c.file),
            Some("export the model to ONNX (torch.onnx.export, skl2onnx, onnxmltools) and name its file".into()),
        ));
    }
    if let Err(message) = cfg.onnx_file(c) {
        return Err(cfg.error_at(&format!("{path}.file"), message, None));
    }
    if c.inputs.is_empty() {
        return Err(cfg.error_at(
            &format!("{path}.inputs"),
            "declares no input",
            Some("add `- {name: <the graph's input>, features: [item.<column>, ...]}`".into()),
        ));
    }
    check_listed_once(
        cfg,
        &format!("{path}.inputs"),
        "input ",
        c.inputs.iter().map(|i| i.name.as_str()),
    )?;
    for (i, input) in c.inputs.iter().enumerate() {
        let at = format!("{path}.inputs[{i}].features");
        if input.features.is_empty() {
            return Err(cfg.error_at(
                &at,
                format!("input `{}` lists no feature", input.name),
                Some(format!(
                    "list what fills its columns: {}",
                    OnnxFeature::FORMS
                )),
            ));
        }
        for (f, feature) in input.features.iter().enumerate() {
            if OnnxFeature::parse(feature).is_none() {
                return Err(cfg.error_at(
                    &format!("{at}[{f}]"),
                    format!("`{feature}` is not a feature Feed can feed"),
                    Some(format!("write {}", OnnxFeature::FORMS)),
                ));
            }
        }
    }
    if c.outputs.is_empty() {
        return Err(cfg.error_at(
            &format!("{path}.outputs"),
            "declares no head",
            Some("add `- {name: like, output: <the graph's output>}`".into()),
        ));
    }
    if c.outputs.len() > MAX_HEADS {
        return Err(cfg.error_at(
            &format!("{path}.outputs"),
            format!("declares {} heads; at most {MAX_HEADS}", c.outputs.len()),
            None,
        ));
    }
    for (h, head) in c.outputs.iter().enumerate() {
        super::resolve::check_name(cfg, &format!("{path}.outputs[{h}].name"), &head.name)?;
    }
    check_listed_once(
        cfg,
        &format!("{path}.outputs"),
        "head ",
        c.outputs.iter().map(|o| o.name.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::OnnxFeature;

    #[test]
    fn features_parse_in_their_four_forms_only() {
        assert_eq!(
            OnnxFeature::parse("item.quality"),
            Some(OnnxFeature::Item("quality".into()))
        );
        assert_eq!(
            OnnxFeature::parse("user.age"),
            Some(OnnxFeature::User("age".into()))
        );
        assert_eq!(OnnxFeature::parse("hour"), Some(OnnxFeature::Hour));
        assert_eq!(OnnxFeature::parse("history"), Some(OnnxFeature::History));
        for bad in ["item.", "quality", "items.x", "hours", "user"] {
            assert_eq!(OnnxFeature::parse(bad), None, "{bad}");
        }
    }
}
