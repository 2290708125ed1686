//! One live event as the engine keeps it, and the checks a batch passes before anything of it
//! is written: the whole batch or nothing.

use serde::{Deserialize, Serialize};

use crate::config::EventsConfig;
use crate::error::{Error, Result};

/// The longest id (user, item, event, request) an event may carry.
pub const MAX_ID: usize = 512;

/// An event: a user did `kind` to an item at `timestamp` (seconds since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The sender's id for the event; a second event with an accepted id is a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub user_id: String,
    pub item_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Seconds since the epoch; the time of acceptance when the sender gives none.
    pub timestamp: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The served page (`request_id` of `/query` or `/rank`) the event came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// 1-based position of the item on that page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    /// For an impression: the numbers the item's score read when it was served, by name
    /// (`policy.als`, `value_model`, `retrieval.pop`): the ranker's training data, as served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<std::collections::BTreeMap<String, f64>>,
    /// For an impression of a page an experiment split: `experiment/variant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An item of a served page, as its impression records it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub item_id: String,
    pub score: f64,
    pub features: Option<std::collections::BTreeMap<String, f64>>,
}

impl super::log::Entry for Event {
    fn dedup_id(&self) -> Option<&str> {
        self.event_id.as_deref()
    }

    fn compacted_ids(dir: &std::path::Path) -> Result<Vec<String>> {
        Ok(super::compact::read(dir)?
            .into_iter()
            .flat_map(|c| c.events)
            .filter_map(|(_, e)| e.event_id)
            .collect())
    }
}

/// The impressions of a served page: one `impression` event per item, with its 1-based
/// position (after `offset` items of earlier pages) and score, all naming `request_id` (and
/// the experiment's `variant` that answered it).
pub fn impressions(
    user_id: &str,
    request_id: &str,
    items: Vec<Shown>,
    offset: usize,
    now: f64,
    variant: Option<&str>,
) -> Vec<Event> {
    items
        .into_iter()
        .enumerate()
        .map(|(k, shown)| Event {
            event_id: None,
            user_id: user_id.to_string(),
            item_id: shown.item_id,
            kind: crate::config::IMPRESSION.to_string(),
            timestamp: now,
            value: shown.score.is_finite().then_some(shown.score),
            request_id: Some(request_id.to_string()),
            position: Some((offset + k + 1) as u32),
            features: shown.features,
            variant: variant.map(str::to_string),
        })
        .collect()
}

/// Checks every event of a batch against the model's event types: the first wrong one is an
/// error naming its row (`events[3].type`), and nothing of the batch is accepted.
pub fn check_batch(events: &[Event], config: &EventsConfig) -> Result<()> {
    for (row, e) in events.iter().enumerate() {
        let at = |field: &str| format!("events[{row}].{field}");
        for (field, value) in [
            ("user_id", Some(&e.user_id)),
            ("item_id", Some(&e.item_id)),
            ("event_id", e.event_id.as_ref()),
            ("request_id", e.request_id.as_ref()),
        ] {
            match value {
                Some(v) if v.is_empty() => {
                    return Err(Error::invalid(at(field), format!("{} is empty", at(field))))
                }
                Some(v) if v.len() > MAX_ID => {
                    return Err(Error::invalid(
                        at(field),
                        format!("{} is longer than {MAX_ID} bytes", at(field)),
                    ))
                }
                _ => {}
            }
        }
        if !config.accepts(&e.kind) {
            let hint = crate::error::did_you_mean(&e.kind, config.types.iter().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .unwrap_or_else(|| format!("accepted types: {}", config.types.join(", ")));
            return Err(Error::invalid(
                at("type"),
                format!(
                    "{}: `{}` is not an event type of this model",
                    at("type"),
                    e.kind
                ),
            )
            .with_hint(hint));
        }
        if !e.timestamp.is_finite() || e.timestamp < 0.0 {
            return Err(Error::invalid(
                at("timestamp"),
                format!("{} must be seconds since the epoch", at("timestamp")),
            ));
        }
        if e.value.is_some_and(|v| !v.is_finite()) {
            return Err(Error::invalid(
                at("value"),
                format!("{} must be a finite number", at("value")),
            ));
        }
        if e.position == Some(0) {
            return Err(Error::invalid(
                at("position"),
                format!("{} is 1-based", at("position")),
            ));
        }
    }
    Ok(())
}

/// An event of `kind` at time 1 with nothing optional, for tests.
#[cfg(test)]
pub(crate) fn test_event(user: &str, item: &str, kind: &str) -> Event {
    Event {
        event_id: None,
        user_id: user.into(),
        item_id: item.into(),
        kind: kind.into(),
        timestamp: 1.0,
        value: None,
        request_id: None,
        position: None,
        features: None,
        variant: None,
    }
}

#[cfg(test)]
mod tests {
    use super::test_event as event;
    use super::*;

    #[test]
    fn a_batch_is_refused_at_its_first_wrong_row() {
        let config = EventsConfig {
            types: vec!["click".into(), "like".into()],
            interactions: None,
            retention: None,
        };
        let mut batch = vec![event("u", "i", "click"), event("u", "i", "lik")];
        let e = check_batch(&batch, &config).unwrap_err().to_string();
        assert!(
            e.contains("events[1].type") && e.contains("did you mean `like`?"),
            "{e}"
        );
        batch[1].kind = "like".into();
        batch[0].user_id.clear();
        let e = check_batch(&batch, &config).unwrap_err().to_string();
        assert!(e.contains("events[0].user_id is empty"), "{e}");
        batch[0].user_id = "u".into();
        check_batch(&batch, &config).unwrap();
        // Without declared types, any type is accepted.
        check_batch(&[event("u", "i", "anything")], &EventsConfig::default()).unwrap();
    }
}
