//! Where each field of a YAML document sits: field path → (line, column).
//!
//! serde_yaml reports positions only for syntax and type errors; the semantic checks run after
//! deserialisation and know only a field path. This index lets every error carry a line and
//! column. It is built from the YAML event stream, so block and flow styles both work.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Field path → 1-based (line, column) of the value, and of the key for mapping entries.
#[derive(Debug, Default, Clone)]
pub struct Locations {
    values: HashMap<String, (usize, usize)>,
    keys: HashMap<String, (usize, usize)>,
}

impl Locations {
    /// Indexes `text`; a document that does not parse yields an empty index (serde_yaml reports
    /// the syntax error itself, with its position).
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        builder.out
    }

    /// The position of the value at `path`, or of the nearest ancestor that has one.
    pub fn value(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return Some(*pos);
            }
            p = parent(p)?;
        }
    }

    /// The position of the key at exactly `path`, if the document has it.
    pub fn keys_at(&self, path: &str) -> Option<(usize, usize)> {
        self.keys.get(path).copied()
    }

    /// The position of key `word` somewhere under `path` (inside list elements too), when one
    /// entry has it: for errors that name a key but not the element it is in.
    pub fn key_under(&self, path: &str, word: &str) -> Option<(usize, usize)> {
        let suffix = format!(".{word}");
        let mut found = self
            .keys
            .iter()
            .filter(|(k, _)| k.starts_with(path) && k.ends_with(&suffix));
        match (found.next(), found.next()) {
            (Some((_, pos)), None) => Some(*pos),
            _ => None,
        }
    }

    /// The position of the key of the mapping entry at `path` (for unknown-key errors).
    pub fn key(&self, path: &str) -> Option<(usize, usize)> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

enum Frame {
    Map {
        path: String,
        pending_key: Option<(String, (usize, usize))>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    out: Locations,
}

impl Builder {
    /// The path of the node starting now, and records the key position for mapping entries.
    /// Returns None when the event is a mapping key (not a value).
    fn next_value_path(&mut self, scalar: Option<&str>, pos: (usize, usize)) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, pending_key }) => match pending_key.take() {
                Some((key, key_pos)) => {
                    let p = if path.is_empty() {
                        key
                    } else {
                        format!("{path}.{key}")
                    };
                    self.out.keys.insert(p.clone(), key_pos);
                    Some(p)
                }
                None => {
                    // A key; complex (non-scalar) keys are recorded under an empty name.
                    *pending_key = Some((scalar.unwrap_or_default().to_string(), pos));
                    // A block mapping's start event sits after its first key: the key is where
                    // the mapping starts for a reader.
                    if let Some(start) = self.out.values.get_mut(path.as_str()) {
                        if pos < *start {
                            *start = pos;
                        }
                    }
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line().max(1), mark.col() + 1);
        match ev {
            Event::Scalar(value, ..) => {
                if let Some(p) = self.next_value_path(Some(&value), pos) {
                    self.out.values.insert(p, pos);
                }
            }
            Event::Alias(_) => {
                if let Some(p) = self.next_value_path(None, pos) {
                    self.out.values.insert(p, pos);
                }
            }
            Event::MappingStart(..) => {
                let path = self.next_value_path(None, pos).unwrap_or_default();
                self.out.values.insert(path.clone(), pos);
                self.stack.push(Frame::Map {
                    path,
                    pending_key: None,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_value_path(None, pos).unwrap_or_default();
                self.out.values.insert(path.clone(), pos);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_paths() {
        let text =
            "model:\n  name: x\npolicies:\n  - {name: a, type: als}\n  - name: b\n    factors: 8\n";
        let loc = Locations::index(text);
        assert_eq!(loc.value("model.name"), Some((2, 9)));
        assert_eq!(loc.key("model.name"), Some((2, 3)));
        assert_eq!(loc.value("policies[0].type"), Some((4, 21)));
        assert_eq!(loc.value("policies[1].factors"), Some((6, 14)));
        // Falls back to the nearest ancestor.
        assert_eq!(loc.value("policies[1].missing"), Some((5, 5)));
    }
}
