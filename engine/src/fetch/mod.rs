//! Fetch: register the connectors in a DataFusion session, check that each fetch statement is
//! one SELECT over declared connectors, plan it against their schemas (so that a missing column
//! fails before any training) and stream its record batches.

// Config errors are a cold path that ends the command; boxing them would only add noise.
#![allow(clippy::result_large_err)]

mod cluster;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use feed_connectors::ConnectorError;

use crate::config::ModelConfig;
use crate::error::{did_you_mean, ConfigError, Error, Result};

/// The fetch statements, planned and ready to stream.
pub struct FetchPlan {
    pub events: DataFrame,
    pub items: Option<DataFrame>,
    pub users: Option<DataFrame>,
    pub impressions: Option<DataFrame>,
}

/// Which fetch statement; names the field and its required columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    Events,
    Items,
    Users,
    Impressions,
}

impl Fetch {
    pub fn field(self) -> &'static str {
        match self {
            Fetch::Events => "fetch.events",
            Fetch::Items => "fetch.items",
            Fetch::Users => "fetch.users",
            Fetch::Impressions => "fetch.impressions",
        }
    }

    fn required(self) -> &'static [&'static str] {
        match self {
            Fetch::Events => &["user_id", "item_id", "timestamp"],
            Fetch::Items => &["item_id"],
            Fetch::Users => &["user_id"],
            Fetch::Impressions => &["user_id", "item_id", "timestamp"],
        }
    }
}

/// Registers the connectors and plans every fetch statement. Reads only metadata and schema
/// samples, never the rows; every failure is a located [`ConfigError`].
#[tracing::instrument(skip_all, fields(model = %cfg.name))]
pub async fn plan(cfg: &ModelConfig) -> Result<FetchPlan> {
    // Rows must arrive in source order (or the SQL's ORDER BY), which decides the order of
    // events with equal timestamps, and so the split: see `stream`.
    // The SQL's operators (joins, sorts, aggregations) reserve from a pool of the fetch's
    // memory budget and fail when it is spent, instead of taking the machine's memory.
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(cfg.fetch_limits.memory_bytes as usize, 1.0)
        .build_arc()
        .map_err(|e| Error::Internal(e.strip_backtrace()))?;
    let ctx = match &cfg.fetch_cluster {
        None => SessionContext::new_with_config_rt(session_config(), runtime),
        Some(url) => cluster_context(cfg, url, runtime).await?,
    };
    let paths = feed_connectors::DataPaths::new(&cfg.base_dir, &cfg.data_roots);
    for (i, block) in cfg.connectors.iter().enumerate() {
        let connector =
            feed_connectors::build(block, &paths).map_err(|e| connector_error(cfg, i, e))?;
        connector
            .register(&ctx)
            .await
            .map_err(|e| connector_error(cfg, i, e))?;
    }
    let events = plan_one(cfg, &ctx, Fetch::Events, &cfg.fetch.events).await?;
    let items = match &cfg.fetch.items {
        Some(sql) => Some(plan_one(cfg, &ctx, Fetch::Items, sql).await?),
        None => None,
    };
    let users = match &cfg.fetch.users {
        Some(sql) => Some(plan_one(cfg, &ctx, Fetch::Users, sql).await?),
        None => None,
    };
    let impressions = match &cfg.fetch.impressions {
        Some(sql) => Some(plan_one(cfg, &ctx, Fetch::Impressions, sql).await?),
        None => None,
    };
    Ok(FetchPlan {
        events,
        items,
        users,
        impressions,
    })
}

/// How many partitions of a file a fetch reads at once. Fixed, not the machine's core count,
/// so that every machine plans the same partitions.
pub const PARTITIONS: usize = 4;

/// Files smaller than this are read as one partition (DataFusion's default is 10 MiB).
const PARTITION_MIN_BYTES: usize = 1 << 20;

/// The fetch's session settings: files split into byte ranges read in parallel, and no
/// operator that merges partitions in arrival order (round-robin or hash repartitioning), so
/// that a plan either keeps each partition's rows in source order or is read as one partition.
fn session_config() -> SessionConfig {
    SessionConfig::new()
        .with_target_partitions(PARTITIONS)
        .with_repartition_file_scans(true)
        .with_repartition_file_min_size(PARTITION_MIN_BYTES)
        .with_round_robin_repartition(false)
        .with_repartition_joins(false)
        .with_repartition_aggregations(false)
        .with_repartition_windows(false)
        .with_repartition_sorts(false)
        // A partition reads its own byte ranges only: stealing a sibling's unopened ranges
        // would move rows between partitions from run to run.
        .set_bool(
            "datafusion.execution.enable_file_stream_work_stealing",
            false,
        )
        // Text as plain Utf8, never Utf8View, as Ballista reads it (Arrow Flight cannot carry
        // the views' large buffers): a local fetch and a cluster's give the same columns.
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
}

/// A session whose plans run on the Ballista cluster at `url`: the tables are registered here
/// as usual, and the plan travels to the scheduler (DataFusion's protobuf form), whose
/// executors read the files themselves. The scheduler is asked once here, so that one that does
/// not answer fails validation at `fetch.scheduler`.
async fn cluster_context(
    cfg: &ModelConfig,
    url: &str,
    runtime: std::sync::Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> Result<SessionContext> {
    use ballista::prelude::SessionContextExt;
    let state = datafusion::execution::SessionStateBuilder::new()
        .with_config(session_config().with_extension(std::sync::Arc::new(Cluster(url.to_string()))))
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    let unreachable = |detail: String| {
        cfg.error_at(
            "fetch.scheduler",
            format!("no Ballista scheduler answers at {url}: {detail}"),
            Some("start one (`feedctl cluster scheduler`), or check the address".into()),
        )
    };
    let address = url.trim_start_matches("df://").to_string();
    let reached = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await;
    match reached {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(unreachable(e.to_string()).into()),
        Err(_) => return Err(unreachable("no answer within 5 s".into()).into()),
    }
    SessionContext::remote_with_state(url, state)
        .await
        .map_err(|e| unreachable(e.strip_backtrace()).into())
}

/// The Ballista scheduler a session's plans run on: carried in its config, so that `stream`
/// knows to run them there.
struct Cluster(String);

/// Starts streaming one planned fetch, in source order.
///
/// A plan whose partitions each keep source order (scans split into consecutive byte ranges or
/// row groups, filters, projections) runs its partitions at once and yields them one after
/// another, partition 0 first: the rows come in the order one partition would give, at the
/// speed of several. Partitions ahead of the one being read buffer their batches. A plan that
/// merges partitions as they arrive (a join's build side, an aggregation) would not be
/// deterministic, so it is planned again as one partition.
pub async fn stream(df: DataFrame, which: Fetch) -> Result<SendableRecordBatchStream> {
    let (state, logical) = df.into_parts();
    if let Some(cluster) = state.config().get_extension::<Cluster>() {
        return cluster::execute(&state, &logical, &cluster.0)
            .await
            .map_err(|e| read_error(which, e));
    }
    let plan = state
        .create_physical_plan(&logical)
        .await
        .map_err(|e| read_error(which, e))?;
    let partitions = plan.properties().output_partitioning().partition_count();
    if partitions > 1 && keeps_partition_order(plan.as_ref()) {
        let task = state.task_ctx();
        let openers = (0..partitions)
            .map(|p| {
                let opened = plan.execute(p, task.clone());
                Box::pin(async move { opened }) as Opener
            })
            .collect();
        return Ok(in_order(plan.schema(), openers));
    }
    let one = datafusion::execution::SessionStateBuilder::new_from_existing(state.clone())
        .with_config(state.config().clone().with_target_partitions(1))
        .build();
    let plan = one
        .create_physical_plan(&logical)
        .await
        .map_err(|e| read_error(which, e))?;
    datafusion::physical_plan::execute_stream(plan, one.task_ctx())
        .map_err(|e| read_error(which, e))
}

/// Whether no operator of `plan` merges its input partitions in arrival order.
fn keeps_partition_order(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> bool {
    const MERGING: [&str; 3] = [
        "RepartitionExec",
        "CoalescePartitionsExec",
        "InterleaveExec",
    ];
    !MERGING.contains(&plan.name())
        && plan
            .children()
            .into_iter()
            .all(|c| keeps_partition_order(c.as_ref()))
}

/// Opens one partition's stream.
type Opener = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = datafusion::error::Result<SendableRecordBatchStream>>
            + Send,
    >,
>;

/// Reads every partition at once and yields their batches partition by partition, partition 0
/// first. Partitions ahead of the one being yielded buffer their batches.
fn in_order(
    schema: datafusion::arrow::datatypes::SchemaRef,
    openers: Vec<Opener>,
) -> SendableRecordBatchStream {
    use futures::StreamExt;
    let receivers: Vec<_> = openers
        .into_iter()
        .map(|open| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                let mut stream = match open.await {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                while let Some(batch) = stream.next().await {
                    let failed = batch.is_err();
                    // A closed receiver means the reader stopped: stop reading too.
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            });
            tokio_stream_of(rx)
        })
        .collect();
    Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(receivers).flatten(),
        ),
    )
}

/// An unbounded receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> futures::stream::BoxStream<'static, T> {
    Box::pin(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// A failure while reading a fetch's rows: the memory budget spent is the model file's to
/// change (`fetch.memory_limit`); anything else is the source's.
pub fn read_error(which: Fetch, e: datafusion::error::DataFusionError) -> Error {
    let e = e.find_root();
    match e {
        datafusion::error::DataFusionError::ResourcesExhausted(m) => over_budget(which, m),
        other => Error::source(which.field(), other.strip_backtrace()),
    }
}

/// The error of a fetch that needs more memory than `fetch.memory_limit` gives it.
pub fn over_budget(which: Fetch, detail: &str) -> Error {
    Error::invalid(
        "fetch.memory_limit",
        format!(
            "{} needs more memory than `fetch.memory_limit` allows ({detail})",
            which.field()
        ),
    )
    .with_hint("narrow the SQL (a join that multiplies rows?), or raise `fetch.memory_limit`")
}

/// A connector's failure, by who must act: a wrong block or an unreadable source is the model
/// file's (located at the field), a connector bug is ours (internal).
fn connector_error(cfg: &ModelConfig, index: usize, e: ConnectorError) -> Error {
    let (field, hint) = match &e {
        ConnectorError::Config { field, .. } => (field.as_str(), None),
        ConnectorError::Source { field, hint, .. } => (field.as_str(), Some(hint.clone())),
        ConnectorError::Internal { .. } => return Error::Internal(e.to_string()),
    };
    cfg.error_at(&format!("connectors[{index}].{field}"), e.to_string(), hint)
        .into()
}

async fn plan_one(
    cfg: &ModelConfig,
    ctx: &SessionContext,
    which: Fetch,
    sql: &str,
) -> Result<DataFrame> {
    let field = which.field();
    let statement =
        check_select(sql).map_err(|e| sql_error(cfg, field, sql, e.at, e.message, e.hint))?;
    let state = ctx.state();
    let tables = state
        .resolve_table_references(&statement)
        .map_err(|e| cfg.error_at(field, e.strip_backtrace().to_string(), None))?;
    for table in tables {
        let exists = ctx.table_exist(table.clone()).unwrap_or(false);
        if !exists {
            let ids = cfg.connectors.iter().map(|c| c.id());
            let hint = match did_you_mean(table.table(), ids) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "declare a connector with `id: {}`, or use one of: {}",
                    table.table(),
                    cfg.connectors
                        .iter()
                        .map(|c| c.id())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(sql_error(
                cfg,
                field,
                sql,
                word_in(sql, table.table()),
                format!("reads table `{table}`, which no connector declares"),
                Some(hint),
            )
            .into());
        }
    }
    let plan = state.statement_to_plan(statement).await.map_err(|e| {
        let message = e.strip_backtrace().to_string();
        // DataFusion names the unknown column or function; the error points at it.
        let named = ["No field named ", "Invalid function '", "Invalid function "]
            .iter()
            .find_map(|p| message.split_once(p).map(|(_, rest)| rest))
            .map(|rest| {
                rest.trim_start_matches(['\'', '"'])
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('.')
            });
        let at = named.and_then(|n| word_in(sql, n.rsplit('.').next().unwrap_or(n)));
        sql_error(cfg, field, sql, at, message, None)
    })?;
    let df = DataFrame::new(state, plan);
    check_columns(cfg, which, sql, df.schema().as_arrow())?;
    Ok(df)
}

/// An error about the SQL of `field`, at byte `at` of it when known (the SQL may be a block
/// scalar several lines down the file), else at the field.
fn sql_error(
    cfg: &ModelConfig,
    field: &str,
    sql: &str,
    at: Option<usize>,
    message: String,
    hint: Option<String>,
) -> ConfigError {
    match at {
        Some(at) => {
            let mut q = feed_lang::QueryError::new(
                feed_lang::ErrorKind::Syntax,
                message,
                feed_lang::Span::new(at, (at + 1).min(sql.len()).max(at)),
            );
            q.hint = hint;
            cfg.error_in_text(field, sql, &q)
        }
        None => cfg.error_at(field, message, hint),
    }
}

/// The byte offset of the first whole-word, case-insensitive occurrence of `word` in `sql`.
fn word_in(sql: &str, word: &str) -> Option<usize> {
    if word.is_empty() {
        return None;
    }
    let (hay, needle) = (sql.to_ascii_lowercase(), word.to_ascii_lowercase());
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    hay.match_indices(&needle).map(|(i, _)| i).find(|&i| {
        let before = hay[..i].chars().next_back().is_none_or(|c| !is_word(c));
        let after = hay[i + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !is_word(c));
        before && after
    })
}

/// Exactly one read-only query: a SELECT (with CTEs, unions, ...). Anything that writes, copies
/// or configures is refused.
/// A SQL syntax error in words, and where in the SQL it is (1-based line and column), from the
/// parser's `... at Line: L, Column: C`.
fn syntax_error(e: &datafusion::error::DataFusionError) -> (String, Option<(usize, usize)>) {
    let words = match e.find_root() {
        datafusion::error::DataFusionError::SQL(p, _) => p.to_string(),
        other => other.strip_backtrace(),
    };
    let words = words
        .strip_prefix("sql parser error: ")
        .unwrap_or(&words)
        .to_string();
    match words.rsplit_once(" at Line: ") {
        Some((message, at)) => {
            let place = at
                .split_once(", Column: ")
                .and_then(|(l, c)| Some((l.trim().parse().ok()?, c.trim().parse().ok()?)));
            (message.to_string(), place)
        }
        None => (words, None),
    }
}

/// The byte offset of 1-based `line` and `column` (in characters) in `text`.
fn offset_of(text: &str, line: usize, column: usize) -> Option<usize> {
    let start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let rest = text.get(start..)?;
    let within = rest
        .char_indices()
        .nth(column.checked_sub(1)?)
        .map_or(rest.len(), |(i, _)| i);
    Some(start + within)
}

/// Why a fetch is not one SELECT, with the place in the SQL when the parser gives one.
struct SelectError {
    message: String,
    hint: Option<String>,
    at: Option<usize>,
}

fn check_select(sql: &str) -> Result<Statement, SelectError> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| {
        let (words, place) = syntax_error(&e);
        SelectError {
            message: format!("SQL syntax error: {words}"),
            hint: Some("write one SELECT statement".to_string()),
            // An error at the end ("found: EOF") has no position: it is after the last word.
            at: place.and_then(|(l, c)| offset_of(sql, l, c)).or_else(|| {
                words
                    .contains("found: EOF")
                    .then(|| sql.trim_end().len().saturating_sub(1))
            }),
        }
    })?;
    if statements.len() != 1 {
        return Err(SelectError {
            message: format!(
                "must be exactly one SELECT statement, found {}",
                statements.len()
            ),
            hint: Some("remove the extra statements (and any `;` between them)".into()),
            at: None,
        });
    }
    let statement = statements.pop_front().expect("one statement");
    match &statement {
        Statement::Statement(s) if matches!(s.as_ref(), SqlStatement::Query(_)) => Ok(statement),
        other => {
            let text = other.to_string();
            let verb: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(SelectError {
                message: format!("must be a SELECT; `{verb} ...` is not allowed in fetch"),
                hint: Some("fetch only reads: write a SELECT".into()),
                at: None,
            })
        }
    }
}

fn check_columns(
    cfg: &ModelConfig,
    which: Fetch,
    sql: &str,
    schema: &Schema,
) -> Result<(), ConfigError> {
    let field = which.field();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for required in which.required() {
        if !names.contains(required) {
            let hint = match did_you_mean(required, names.iter().copied()) {
                Some(s) => format!("alias it: `{s} AS {required}`"),
                None => format!(
                    "add `... AS {required}` to the SELECT list (it yields: {})",
                    names.join(", ")
                ),
            };
            return Err(cfg.error_at(field, format!("yields no `{required}` column"), Some(hint)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for n in &names {
        if !seen.insert(n) {
            return Err(cfg.error_at(
                field,
                format!("yields column `{n}` twice"),
                Some("alias one of them".into()),
            ));
        }
    }
    for f in schema.fields() {
        let t = f.data_type();
        let bad = match f.name().as_str() {
            "user_id" | "item_id" => !is_id_type(t),
            "timestamp" if matches!(which, Fetch::Events | Fetch::Impressions) => !is_time_type(t),
            "value" if which == Fetch::Events => !t.is_numeric(),
            "position" if which == Fetch::Impressions => !t.is_numeric(),
            "request_id" if which == Fetch::Impressions => !is_id_type(t),
            "event_type" if which == Fetch::Events => !(is_text_type(t) || t.is_integer()),
            _ => false,
        };
        if bad {
            let expected = match f.name().as_str() {
                "user_id" | "item_id" | "request_id" => "text or an integer",
                "timestamp" => "integer seconds since the epoch, or a timestamp",
                "value" | "position" => "a number",
                _ => "text",
            };
            // At the last mention of the column: its alias, when the SELECT renames into it.
            let at = sql
                .to_ascii_lowercase()
                .rfind(&f.name().to_ascii_lowercase());
            return Err(sql_error(
                cfg,
                field,
                sql,
                at,
                format!(
                    "column `{}` is {}; expected {expected}",
                    f.name(),
                    type_words(t)
                ),
                Some("CAST it in the SELECT".into()),
            ));
        }
    }
    Ok(())
}

/// An Arrow type as a user of SQL would say it.
pub fn type_words(t: &DataType) -> String {
    match t {
        t if is_text_type(t) => "text".into(),
        t if t.is_integer() => "an integer".into(),
        t if t.is_floating() => "a floating-point number".into(),
        DataType::Boolean => "a boolean".into(),
        DataType::Null => "always NULL".into(),
        DataType::Date32 | DataType::Date64 => "a date".into(),
        DataType::List(_) | DataType::LargeList(_) => "a list".into(),
        DataType::Struct(_) => "a struct".into(),
        other => format!("of type {other}"),
    }
}

fn is_text_type(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text_type(v),
        _ => false,
    }
}

fn is_id_type(t: &DataType) -> bool {
    is_text_type(t) || t.is_integer()
}

fn is_time_type(t: &DataType) -> bool {
    t.is_integer()
        || t.is_floating()
        || matches!(
            t,
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_failures_are_blamed_on_who_must_act() {
        let text = "model: {name: m}\nconnectors:\n  - {id: events, type: file, path: e.csv}\nfetch:\n  events: SELECT user_id, item_id, timestamp FROM events\npolicies:\n  - {name: popular, type: popular}\n";
        let cfg = crate::config::parse(text, "m.yaml", std::path::Path::new(".")).unwrap();
        let internal = connector_error(
            &cfg,
            0,
            ConnectorError::Internal {
                connector: "events".into(),
                message: "a bug".into(),
            },
        );
        assert!(matches!(internal, Error::Internal(_)), "{internal:?}");
        assert!(!internal.is_user_error());
        let unreadable = connector_error(
            &cfg,
            0,
            ConnectorError::Source {
                connector: "events".into(),
                field: "path".into(),
                location: "e.csv".into(),
                message: "no such file".into(),
                hint: "check the path".into(),
            },
        );
        match unreadable {
            Error::Config(c) => {
                assert_eq!((c.path.as_str(), c.line), ("connectors[0].path", Some(3)))
            }
            other => panic!("{other:?}"),
        }
    }

    /// A file of several byte ranges is read as several partitions at once, and its rows
    /// still come in the file's order (which decides the order of equal timestamps); a plan
    /// that merges partitions (a join's build side) is read as one partition, in order too.
    #[test]
    fn partitions_are_read_at_once_and_yielded_in_source_order() {
        use datafusion::arrow::array::AsArray;
        use futures::TryStreamExt;
        let dir = tempfile::tempdir().unwrap();
        // About 3 MB: four byte ranges. Users and times in no sorted order.
        let mut csv = String::from("user_id,item_id,timestamp\n");
        let mut expected = Vec::new();
        for i in 0..120_000u64 {
            let user = format!("u{}", (i * 7919) % 1000);
            csv.push_str(&format!("{user},i{},{}\n", (i * 31) % 5000, 1000 - i % 997));
            expected.push(user);
        }
        std::fs::write(dir.path().join("e.csv"), &csv).unwrap();
        let items: String = (0..5000).map(|i| format!("i{i},t{i}\n")).collect();
        std::fs::write(dir.path().join("i.csv"), format!("item_id,title\n{items}")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // (SQL, read as several partitions, rows in the file's order)
        for (sql, parallel, in_file_order) in [
            ("SELECT user_id, item_id, timestamp FROM events WHERE timestamp > 0", true, true),
            // A join's build side merges its partitions: one partition.
            (
                "SELECT e.user_id, e.item_id, e.timestamp FROM events e JOIN items i ON e.item_id = i.item_id",
                false,
                false,
            ),
            // Partial aggregates merged as they arrive: read as one partition instead.
            (
                "SELECT user_id, item_id, MIN(timestamp) AS timestamp FROM events GROUP BY user_id, item_id",
                false,
                false,
            ),
        ] {
            let text = format!(
                "model: {{name: m}}\nconnectors:\n  - {{id: events, type: file, path: e.csv}}\n  - {{id: items, type: file, path: i.csv}}\nfetch:\n  events: {sql}\npolicies:\n  - {{name: popular, type: popular}}\n"
            );
            let cfg = crate::config::parse(&text, "m.yaml", dir.path()).unwrap();
            let read = || runtime.block_on(async {
                let planned = plan(&cfg).await.unwrap();
                let (state, logical) = planned.events.clone().into_parts();
                let physical = state.create_physical_plan(&logical).await.unwrap();
                let partitions = physical.properties().output_partitioning().partition_count();
                assert_eq!(
                    partitions > 1 && keeps_partition_order(physical.as_ref()),
                    parallel,
                    "{sql}: {partitions} partitions"
                );
                let batches: Vec<_> = stream(planned.events, Fetch::Events)
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                batches
                    .iter()
                    .flat_map(|b| {
                        let column = datafusion::arrow::compute::cast(
                            b.column(0),
                            &DataType::Utf8,
                        )
                        .unwrap();
                        column
                            .as_string::<i32>()
                            .iter()
                            .map(|v| v.unwrap().to_string())
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<String>>()
            });
            let users = read();
            if in_file_order {
                assert_eq!(users.len(), expected.len(), "{sql}");
                let first = users.iter().zip(&expected).position(|(a, b)| a != b);
                assert!(users == expected, "{sql}: rows out of the file's order from row {first:?}");
            } else {
                assert!(users == read(), "{sql}: two reads differ");
            }
        }
    }

    #[test]
    fn only_one_select_is_allowed() {
        assert!(check_select("SELECT a FROM t").is_ok());
        assert!(
            check_select("WITH x AS (SELECT 1 AS a) SELECT a FROM x UNION ALL SELECT 2").is_ok()
        );
        for bad in [
            "DELETE FROM t",
            "DROP TABLE t",
            "COPY t TO 'x.csv'",
            "SELECT 1; SELECT 2",
            "INSERT INTO t VALUES (1)",
            "SELEC a FROM t",
        ] {
            let e = check_select(bad).unwrap_err();
            assert!(e.hint.is_some(), "{bad}: {}", e.message);
        }
        assert!(check_select("DELETE FROM t")
            .unwrap_err()
            .message
            .contains("DELETE"));
    }

    #[test]
    fn syntax_errors_are_in_words_and_located_in_the_sql() {
        let sql = "SELECT user_id,\n  item_id\n  FROM ratings WHERE user_id = = 1";
        let e = check_select(sql).unwrap_err();
        assert!(!e.message.contains("ParserError"), "{}", e.message);
        assert!(!e.message.contains("Line:"), "{}", e.message);
        let at = e.at.expect("located");
        assert_eq!(at, sql.rfind("= 1").unwrap(), "{}", e.message);
        assert_eq!(offset_of("ab\ncd", 2, 2), Some(4));
    }
}
