//! Events and catalog changes on the wire: a JSON array or NDJSON (one object a line), for
//! `POST /models/{name}/events` and `/items`, `feedctl events push` and `items push`. A mistake
//! names its row (0-based, as the batch counts) and field; the model's own checks (event
//! types, attribute columns) follow in the engine.

use feed_engine::live::{Event, ItemChange};
use schemars::JsonSchema;
use serde::Deserialize;

/// One event as a client sends it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The sender's id for the event: a second event with an id already accepted is counted as
    /// a duplicate and ignored.
    #[serde(default)]
    pub event_id: Option<Id>,
    pub user_id: Id,
    pub item_id: Id,
    /// The event type (`click`, `like`, …): one of the model file's `events.types`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the epoch, or an RFC 3339 time; by default the time of acceptance.
    #[serde(default)]
    pub timestamp: Option<Time>,
    #[serde(default)]
    pub value: Option<f64>,
    /// The `request_id` of the `/query` or `/rank` answer the event came from.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The item's 1-based position on that page.
    #[serde(default)]
    pub position: Option<u32>,
}

/// One change to a model's catalog as a client sends it: attribute values to set (an item the
/// catalog lacks is added), or `"delete": true`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    pub item_id: Id,
    /// Values by attribute (a column of `fetch.items`): numbers, text, true/false, or null.
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
    /// Delete the item: it is never served again (until values are set on it).
    #[serde(default)]
    pub delete: bool,
}

/// An id: text, or a whole number (kept as its decimal text).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Id {
    Text(String),
    Number(u64),
}

impl Id {
    fn into_text(self) -> String {
        match self {
            Id::Text(s) => s,
            Id::Number(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Time {
    Seconds(f64),
    Text(String),
}

/// Where a batch is wrong: the row (when known: a JSON array that does not parse has no row,
/// serde's line and column say where), the field when one is at fault, and what is wrong.
/// `syntax` when the text is not JSON at all (400), else the row's content (422).
#[derive(Debug)]
pub struct RowError {
    /// What the rows are: `events` or `items`.
    pub what: &'static str,
    pub row: Option<usize>,
    pub field: Option<String>,
    pub message: String,
    pub syntax: bool,
}

impl RowError {
    /// `events[3].user_id`, `events[3]`, or nothing for the body as a whole.
    pub fn path(&self) -> Option<String> {
        let row = self.row?;
        let what = self.what;
        Some(match &self.field {
            Some(f) => format!("{what}[{row}].{f}"),
            None => format!("{what}[{row}]"),
        })
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.path() {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => write!(f, "{}", self.message),
        }
    }
}

/// The events of a body: a JSON array when it starts with `[`, else NDJSON (blank lines
/// skipped). `now` is the time given to events without one.
pub fn parse(body: &[u8], now: f64) -> Result<Vec<Event>, RowError> {
    rows(body, "events")?
        .into_iter()
        .enumerate()
        .map(|(row, value)| event(row, value, now))
        .collect()
}

/// The catalog changes of a body, read like events.
pub fn parse_items(body: &[u8]) -> Result<Vec<ItemChange>, RowError> {
    rows(body, "items")?
        .into_iter()
        .enumerate()
        .map(|(row, value)| {
            let body: ItemBody = typed(row, value, "items")?;
            Ok(ItemChange {
                item_id: body.item_id.into_text(),
                attributes: body.attributes,
                delete: body.delete,
            })
        })
        .collect()
}

/// The rows of a body: a JSON array when it starts with `[`, else NDJSON (blank lines
/// skipped).
fn rows(body: &[u8], what: &'static str) -> Result<Vec<serde_json::Value>, RowError> {
    let text = std::str::from_utf8(body).map_err(|e| RowError {
        what,
        row: None,
        field: None,
        message: format!("the body is not UTF-8 (byte {})", e.valid_up_to()),
        syntax: true,
    })?;
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| RowError {
            what,
            row: None,
            field: None,
            message: format!("not a JSON array of {what}: {e} (or send NDJSON: one object a line)"),
            syntax: true,
        })
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(row, line)| {
                serde_json::from_str(line).map_err(|e| RowError {
                    what,
                    row: Some(row),
                    field: None,
                    message: format!("not a JSON object: {e}"),
                    syntax: true,
                })
            })
            .collect()
    }
}

/// Row `row` as `T`, a mistake named by its field.
fn typed<T: serde::de::DeserializeOwned>(
    row: usize,
    value: serde_json::Value,
    what: &'static str,
) -> Result<T, RowError> {
    let wrong = |field: Option<String>, message: String| RowError {
        what,
        row: Some(row),
        field,
        message,
        syntax: false,
    };
    if !value.is_object() {
        let one = if what == "events" {
            "an event"
        } else {
            "a change"
        };
        return Err(wrong(None, format!("{one} is a JSON object")));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // serde names a missing or unknown field in its message, not in the path.
        let ticked = inner.split('`').nth(1).map(str::to_string);
        let field = if path != "." {
            Some(path)
        } else if inner.starts_with("missing field") || inner.starts_with("unknown field") {
            ticked
        } else {
            None
        };
        let message = if inner.starts_with("data did not match any variant") {
            "must be text or a whole number".to_string()
        } else {
            feed_engine::config::plain_words(&inner)
        };
        wrong(field, message)
    })
}

fn event(row: usize, value: serde_json::Value, now: f64) -> Result<Event, RowError> {
    let body: EventBody = typed(row, value, "events")?;
    let wrong = |field: Option<String>, message: String| RowError {
        what: "events",
        row: Some(row),
        field,
        message,
        syntax: false,
    };
    let timestamp = match body.timestamp {
        None => now,
        Some(Time::Seconds(s)) => s,
        Some(Time::Text(t)) => chrono::DateTime::parse_from_rfc3339(&t)
            .map(|d| d.timestamp_millis() as f64 / 1000.0)
            .map_err(|_| {
                wrong(
                    Some("timestamp".into()),
                    format!("`{t}` is not seconds since the epoch or an RFC 3339 time"),
                )
            })?,
    };
    Ok(Event {
        event_id: body.event_id.map(Id::into_text),
        user_id: body.user_id.into_text(),
        item_id: body.item_id.into_text(),
        kind: body.kind,
        timestamp,
        value: body.value,
        request_id: body.request_id,
        position: body.position,
        features: None,
        variant: None,
    })
}

/// Seconds since the epoch now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_and_ndjson_read_alike_and_mistakes_name_row_and_field() {
        let ndjson = b"{\"user_id\": \"u1\", \"item_id\": 7, \"type\": \"like\"}\n\n{\"user_id\": 2, \"item_id\": \"i\", \"type\": \"click\", \"timestamp\": \"2026-01-01T00:00:00Z\"}\n";
        let events = parse(ndjson, 5.0).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].item_id.as_str(), events[0].timestamp),
            ("7", 5.0)
        );
        assert_eq!(events[1].user_id, "2");
        assert_eq!(events[1].timestamp, 1_767_225_600.0);
        let array = br#"[{"user_id": "u1", "item_id": "a", "type": "like"}]"#;
        assert_eq!(parse(array, 0.0).unwrap().len(), 1);

        let e = parse(
            b"{\"user_id\": \"u\", \"item_id\": \"a\", \"type\": \"x\"}\n{\"user_id\": \"u\"",
            0.0,
        )
        .unwrap_err();
        assert_eq!((e.row, e.syntax), (Some(1), true));
        let e = parse(br#"[{"user_id": "u", "item_id": "a", "type": "x"}, {"user_id": {}, "item_id": "a", "type": "x"}]"#, 0.0).unwrap_err();
        assert_eq!(e.path().unwrap(), "events[1].user_id");
        assert!(e.message.contains("text or a whole number"), "{e}");
        let e = parse(br#"[{"user_id": "u", "type": "x"}]"#, 0.0).unwrap_err();
        assert_eq!(e.path().unwrap(), "events[0].item_id");
        let e = parse(
            br#"[{"user_id": "u", "item_id": "a", "type": "x", "positon": 1}]"#,
            0.0,
        )
        .unwrap_err();
        assert_eq!(e.path().unwrap(), "events[0].positon");
        let e = parse(
            br#"[{"user_id": "u", "item_id": "a", "type": "x", "timestamp": "soon"}]"#,
            0.0,
        )
        .unwrap_err();
        assert_eq!(e.path().unwrap(), "events[0].timestamp");
        let e = parse(b"[{\"user_id\": 1,", 0.0).unwrap_err();
        assert_eq!((e.path(), e.syntax), (None, true));
    }
}
