//! The training key: what decides whether a new model file must retrain, in a canonical form.
//!
//! Two files with the same key train the same models; they may differ in value model, queries
//! and serving, which need no retraining. The key holds the training-relevant settings *as the
//! user chose them*: every field that holds its default is left out. So a release that adds an
//! optional field (with a default) to a policy or to `training:` leaves every stored key as it
//! was, and writing a default out (`factors: 64`) is the same model as leaving it implicit.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::raw::{EventsConfig, PolicyConfig, RawFetch, TrainingConfig};
use super::ModelConfig;

/// Bumped when the key's shape changes on purpose (a stored key of another format never matches,
/// so the next update retrains once).
const FORMAT: u64 = 2;

impl ModelConfig {
    /// The canonical training key of this file: the data (connectors, fetch SQL and the folder
    /// relative paths resolve against), the policies and the training settings, defaults left
    /// out.
    pub fn training_key(&self) -> Value {
        let dir = std::fs::canonicalize(&self.base_dir).unwrap_or_else(|_| self.base_dir.clone());
        let mut key = serde_json::json!({
            "format": FORMAT,
            "data_dir": dir,
            "connectors": self.connectors.iter().map(chosen).collect::<Vec<_>>(),
            // The SQL, not its limits: a larger budget trains the same models.
            // Nor where it runs: every engine gives the same rows in the same order.
            "fetch": chosen::<RawFetch>(&RawFetch {
                memory_limit: None,
                timeout_seconds: None,
                engine: None,
                scheduler: None,
                ..self.fetch.clone()
            }),
            "policies": self
                .declared_policies
                .as_ref()
                .unwrap_or(&self.policies)
                .iter()
                .map(chosen::<PolicyConfig>)
                .collect::<Vec<_>>(),
            // Nor the training's memory budget: it admits runs, it does not change them.
            "training": chosen::<TrainingConfig>(&TrainingConfig {
                memory_limit: None,
                ..self.training.clone()
            }),
        });
        // Which live events are interactions decides what trains; a file that declares none
        // keeps the key it had before `events` existed.
        if self.events != EventsConfig::default() {
            key["events"] = chosen(&self.events);
        }
        key
    }
}

/// `value` serialised with the fields that hold their default left out, at any depth. A field
/// holds its default when the document without it deserialises to the same value; required
/// fields and tags fail to deserialise without themselves, so they always stay.
pub(crate) fn chosen<T: Serialize + DeserializeOwned>(value: &T) -> Value {
    let full = serde_json::to_value(value).expect("config serialises");
    let same = |doc: &Value| {
        serde_json::from_value::<T>(doc.clone())
            .ok()
            .and_then(|t| serde_json::to_value(t).ok())
            .is_some_and(|v| v == full)
    };
    let mut doc = full.clone();
    // Deepest fields first, so that a nested struct whose fields are all default goes as a whole.
    let mut paths = Vec::new();
    object_paths(&doc, &mut Vec::new(), &mut paths);
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in paths {
        let mut trial = doc.clone();
        if remove(&mut trial, &path) && same(&trial) {
            doc = trial;
        }
    }
    doc
}

/// Every path to a field of an object, at any depth (through objects only: list elements and map
/// entries are data, not fields).
fn object_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if let Value::Object(map) = v {
        for (k, child) in map {
            prefix.push(k.clone());
            out.push(prefix.clone());
            object_paths(child, prefix, out);
            prefix.pop();
        }
    }
}

fn remove(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at: &mut Value = v;
    for p in parents {
        match at.get_mut(p) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.as_object_mut()
        .map(|m: &mut Map<String, Value>| m.remove(last).is_some())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    mod before {
        use super::*;
        /// A policy's config as a release has it.
        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Policy {
            pub name: String,
            #[serde(default = "sixty_four")]
            pub factors: usize,
            #[serde(default)]
            pub window: Option<f64>,
        }
        fn sixty_four() -> usize {
            64
        }
    }

    mod after {
        use super::*;
        /// The next release adds an optional field with a default, and a nested block.
        #[derive(Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Policy {
            pub name: String,
            #[serde(default = "sixty_four")]
            pub factors: usize,
            #[serde(default)]
            pub window: Option<f64>,
            #[serde(default = "half")]
            pub dropout: f64,
            #[serde(default)]
            pub schedule: Schedule,
        }
        #[derive(Serialize, Deserialize, Default)]
        pub struct Schedule {
            #[serde(default)]
            pub warmup: usize,
        }
        fn sixty_four() -> usize {
            64
        }
        fn half() -> f64 {
            0.5
        }
    }

    #[test]
    fn a_new_optional_field_leaves_the_key_unchanged() {
        let yaml = "{name: als, factors: 32}";
        let old: before::Policy = serde_yaml::from_str(yaml).unwrap();
        let new: after::Policy = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(chosen(&old), chosen(&new));
        assert_eq!(
            chosen(&new),
            serde_json::json!({"name": "als", "factors": 32})
        );
        // A value the user chose stays in the key, nested ones too.
        let tuned: after::Policy =
            serde_yaml::from_str("{name: als, dropout: 0.1, schedule: {warmup: 3}}").unwrap();
        assert_eq!(
            chosen(&tuned),
            serde_json::json!({"name": "als", "dropout": 0.1, "schedule": {"warmup": 3}})
        );
    }

    fn key(policies: &str, training: &str) -> Value {
        let text = format!(
            "model: {{name: m}}\nconnectors:\n  - {{id: events, type: file, path: e.csv}}\n\
             fetch:\n  events: SELECT user_id, item_id, timestamp FROM events\n\
             policies:\n{policies}{training}"
        );
        crate::config::parse(&text, "m.yaml", std::path::Path::new("."))
            .unwrap()
            .training_key()
    }

    #[test]
    fn the_key_holds_what_the_user_chose() {
        let implicit = key("  - {name: als, type: als}\n", "");
        // Defaults written out are the same model.
        let explicit = key(
            "  - {name: als, type: als, factors: 64, iterations: 15}\n",
            "training: {seed: 42}\n",
        );
        assert_eq!(implicit, explicit);
        assert_eq!(
            implicit["policies"],
            serde_json::json!([{"name": "als", "type": "als"}])
        );
        assert_eq!(implicit["training"], serde_json::json!({}));
        // A real change is a different key.
        assert_ne!(
            implicit,
            key("  - {name: als, type: als, factors: 32}\n", "")
        );
        assert_ne!(
            implicit,
            key("  - {name: als, type: als}\n", "training: {seed: 7}\n")
        );
    }
}
