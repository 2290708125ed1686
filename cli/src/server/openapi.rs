//! The OpenAPI 3.1 document of the HTTP API, generated from the wire types (their JSON Schemas,
//! draft 2020-12, are OpenAPI 3.1 schema objects as they are) and the route table below. Served
//! at `GET /openapi.json`, printed by `feedctl schema --openapi` and committed as
//! `spec/openapi.json`, which a test keeps current.

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use feed_engine::registry::Scope;

use crate::wire::*;

/// One operation: its route, what it takes and answers, and the errors it may give.
struct Operation {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    body: Option<fn(&mut SchemaGenerator) -> Value>,
    /// The schema of one line, for a body that may also come as NDJSON.
    ndjson_line: Option<fn(&mut SchemaGenerator) -> Value>,
    answer: fn(&mut SchemaGenerator) -> Value,
    /// The answer's media type.
    media: &'static str,
    /// The scope of the API key it needs when the server requires keys; `None`: open.
    scope: Option<Scope>,
    /// Error statuses besides 500.
    errors: &'static [(u16, &'static str)],
}

const JSON: &str = "application/json";

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

fn list_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    json!({"type": "array", "items": schema::<T>(g)})
}

fn any_object(_: &mut SchemaGenerator) -> Value {
    json!({"type": "object"})
}

fn text(_: &mut SchemaGenerator) -> Value {
    json!({"type": "string"})
}

const MODEL_ERRORS: &[(u16, &str)] = &[(404, "unknown model, or no ACTIVE version yet")];
const RANK_ERRORS: &[(u16, &str)] = &[
    (400, "the body is not JSON"),
    (404, "unknown model, or no ACTIVE version yet"),
    (413, "the body is larger than the limit (1 MiB)"),
    (415, "the body is not declared `application/json`"),
    (
        422,
        "the body lacks a field, has a wrong type or an unknown field, or a value is out of range",
    ),
];
const QUERY_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "the body is not JSON, or the query text is wrong (error_type `query`, with its location)",
    ),
    (404, "unknown model, saved query, or no ACTIVE version yet"),
    (413, "the body is larger than the limit (1 MiB)"),
    (415, "the body is not declared `application/json`"),
    (
        422,
        "the body is wrong, or a parameter value is missing or of the wrong type",
    ),
];

const OPERATIONS: &[Operation] = &[
    Operation {
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        body: None,
        ndjson_line: None,
        answer: schema::<Health>,
        media: JSON,
        scope: None,
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/openapi.json",
        summary: "This document",
        body: None,
        ndjson_line: None,
        answer: any_object,
        media: JSON,
        scope: None,
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/models",
        summary: "Every model with its ACTIVE and newest versions",
        body: None,
        ndjson_line: None,
        answer: list_of::<ModelSummary>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: &[],
    },
    Operation {
        method: "get",
        path: "/models/{name}",
        summary: "A model: its versions and the ACTIVE version's evaluation",
        body: None,
        ndjson_line: None,
        answer: schema::<ModelView>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: MODEL_ERRORS,
    },
    Operation {
        method: "get",
        path: "/models/{name}/versions/{version}",
        summary: "A version of the model as `view-model --json` shows it: the versions, its status log, vector indexes and evaluation (training curves included); `current` for the ACTIVE version, else the newest",
        body: None,
        ndjson_line: None,
        answer: schema::<ModelDetail>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: &[
            (404, "unknown model or version"),
            (422, "the version is not a number or `current`"),
        ],
    },
    Operation {
        method: "get",
        path: "/console",
        summary: "The web console (HTML; also /console/app.js and /console/app.css): models, version timelines, metrics and training curves, reliability diagrams, live rates and a query playground, over this API with the same keys",
        body: None,
        ndjson_line: None,
        answer: text,
        media: "text/html",
        scope: None,
        errors: &[],
    },
    Operation {
        method: "post",
        path: "/models/{name}/rank",
        summary: "A user's best unseen items by the model's value model",
        body: Some(schema::<RankBody>),
        ndjson_line: None,
        answer: schema::<RankResponse>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: RANK_ERRORS,
    },
    Operation {
        method: "post",
        path: "/models/{name}/query",
        summary: "Run a FeedQL query (or a saved one) against the model",
        body: Some(schema::<QueryBody>),
        ndjson_line: None,
        answer: schema::<QueryResponse>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: QUERY_ERRORS,
    },
    Operation {
        method: "post",
        path: "/query",
        summary: "Run a FeedQL query against the model the body names",
        body: Some(schema::<QueryBody>),
        ndjson_line: None,
        answer: schema::<QueryResponse>,
        media: JSON,
        scope: Some(Scope::Query),
        errors: QUERY_ERRORS,
    },
    Operation {
        method: "post",
        path: "/models/{name}/events",
        summary: "Append live events (a JSON array, or NDJSON): answered once they are on disk; the next query sees them",
        body: Some(list_of::<crate::events::EventBody>),
        ndjson_line: Some(schema::<crate::events::EventBody>),
        answer: schema::<EventsResponse>,
        media: JSON,
        scope: Some(Scope::Events),
        errors: EVENTS_ERRORS,
    },
    Operation {
        method: "post",
        path: "/models/{name}/items",
        summary: "Set item attributes, add items or delete them (a JSON array, or NDJSON): answered once they are on disk and applied; the next query's filters see them",
        body: Some(list_of::<crate::events::ItemBody>),
        ndjson_line: Some(schema::<crate::events::ItemBody>),
        answer: schema::<ItemsResponse>,
        media: JSON,
        scope: Some(Scope::Events),
        errors: ITEMS_ERRORS,
    },
    Operation {
        method: "get",
        path: "/models/{name}/status",
        summary: "A version's status log as server-sent events, as it is written: an event `status` per line (a StatusLine), then `end` (a StatusEnd) when the version ends, and the stream closes. Query `version` (default: the newest being made, else the newest)",
        body: None,
        ndjson_line: None,
        answer: schema::<StatusLine>,
        media: "text/event-stream",
        scope: Some(Scope::Query),
        errors: MODEL_ERRORS,
    },
    Operation {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics in the text format 0.0.4: requests, errors and latency by model, route and status; query time per stage; the served seen-fraction; ACTIVE version and age; the newest version's status; the live overlay (docs/operations.md)",
        body: None,
        ndjson_line: None,
        answer: text,
        media: "text/plain; version=0.0.4",
        scope: Some(Scope::Admin),
        errors: &[],
    },
];

const KEY_ERRORS: &[(u16, &str)] = &[
    (
        401,
        "no API key, or one that is unknown or revoked (the same answer for each)",
    ),
    (403, "the key's scope does not allow the route"),
    (
        429,
        "the key's rate limit is reached (`Retry-After` says when to try again)",
    ),
];

const ITEMS_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "a row is not JSON (`field` names the row: `items[3]`)",
    ),
    (404, "unknown model, or no ACTIVE version yet"),
    (413, "the body is larger than the limit (16 MiB)"),
    (
        422,
        "a row lacks `item_id`, names an attribute the items do not have, or a value that does not fit its column (`field`: `items[3].attributes.price`); nothing of the batch is written",
    ),
];

const EVENTS_ERRORS: &[(u16, &str)] = &[
    (
        400,
        "a row is not JSON (`field` names the row: `events[3]`)",
    ),
    (404, "unknown model, or no ACTIVE version yet"),
    (413, "the body is larger than the limit (16 MiB)"),
    (
        422,
        "a row lacks a field, has a wrong type or an unknown field, or an event type the model does not accept (`field`: `events[3].type`); nothing of the batch is written",
    ),
];

/// The document.
pub fn document() -> Value {
    let mut g = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let error = schema::<ErrorBody>(&mut g);
    let mut paths = Map::new();
    for op in OPERATIONS {
        let mut responses = Map::new();
        responses.insert(
            "200".into(),
            json!({"description": "OK", "content": {op.media: {"schema": (op.answer)(&mut g)}}}),
        );
        // Every route runs under the request timeout; one that reads a body can hit it there.
        let timeout = op.body.map(|_| {
            (
                408,
                "the request (its body included) took longer than the server's request timeout",
            )
        });
        // A server that requires keys (any non-loopback address) refuses these first.
        let refusals = op.scope.map_or(&[][..], |_| KEY_ERRORS);
        let mut errors: Vec<(u16, &str)> = op
            .errors
            .iter()
            .chain(refusals)
            .copied()
            .chain(timeout)
            .collect();
        errors.sort_by_key(|e| e.0);
        for (status, why) in errors
            .iter()
            .chain(&[(500, "a bug or a storage failure (logged by the server)")])
        {
            responses.insert(
                status.to_string(),
                json!({"description": why, "content": {"application/json": {"schema": error.clone()}}}),
            );
        }
        let mut operation = json!({"summary": op.summary, "responses": responses});
        if let Some(scope) = op.scope {
            operation["security"] = json!([{"bearer": []}]);
            operation["x-scope"] = json!(scope.as_str());
        }
        if op.path.contains("{name}") {
            operation["parameters"] = json!([{
                "name": "name", "in": "path", "required": true,
                "description": "The model's name", "schema": {"type": "string"}
            }]);
        }
        if op.path.contains("{version}") {
            operation["parameters"]
                .as_array_mut()
                .expect("a versioned path names its model")
                .push(json!({
                    "name": "version", "in": "path", "required": true,
                    "description": "A version number, or `current`", "schema": {"type": "string"}
                }));
        }
        if let Some(body) = op.body {
            let mut content = json!({"application/json": {"schema": body(&mut g)}});
            if let Some(line) = op.ndjson_line {
                // OpenAPI 3.1 has no schema for a stream of lines (3.2's `itemSchema`): the text,
                // with each line's schema as an extension.
                content["application/x-ndjson"] = json!({
                    "schema": {"type": "string", "description": "one JSON object a line"},
                    "x-item-schema": line(&mut g),
                });
            }
            operation["requestBody"] = json!({"required": true, "content": content});
        }
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Feed",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Rank and query the ACTIVE version of each model (`feedctl serve`). Prose: spec/http.md; the query language: spec/feedql.md."
        },
        "paths": paths,
        "components": {
            "schemas": g.take_definitions(true),
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer",
                "description": "An API key from `feedctl keys create --scope query|events|admin`; required by a server on a non-loopback address or started with --require-keys. `x-scope` on an operation names the scope it needs (`admin` may do everything)."
            }},
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_reference_resolves() {
        let doc = super::document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap();
            assert!(schemas.contains_key(name), "unresolved $ref {name}");
        }
        assert!(schemas.contains_key("QueryResponse") && schemas.contains_key("ErrorBody"));
    }
}
