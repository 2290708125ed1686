//! Streams the fetch results into a [`Dataset`]: ids normalised to text and made dense (in
//! sorted id order), events sorted per user by time, attribute tables aligned to dense ids.
//! Events with equal times keep the order the fetch yields (fetch reads in one partition, so
//! that is the source's order, or the SQL's ORDER BY). Rows with null ids or times are skipped
//! and counted (the status log reports them), never dropped silently.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Int64Type, Schema, TimeUnit};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Dataset, IdMap};
use crate::error::{Error, Result};
use crate::fetch::{self, Fetch, FetchPlan};
use crate::progress::Progress;

/// What the fetch read and what it skipped.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct FetchStats {
    pub event_rows: u64,
    pub events_skipped_null_id: u64,
    pub events_skipped_null_time: u64,
    pub item_rows: u64,
    pub items_skipped_null_id: u64,
    pub items_duplicate: u64,
    pub user_rows: u64,
    pub users_skipped_null_id: u64,
    pub users_duplicate: u64,
    #[serde(default)]
    pub impression_rows: u64,
    #[serde(default)]
    pub impressions_skipped_null: u64,
    #[serde(default)]
    pub impressions_unknown_item: u64,
    /// Items of `fetch.items` that no event mentions (they can still be served by attributes).
    pub items_without_events: u64,
    /// Items in events that `fetch.items` does not list.
    pub items_without_attributes: u64,
    /// Interactions from the model's live event log added to the fetched events.
    pub logged_events: u64,
    /// The log's events numbered below this are in the dataset (see [`Logged::watermark`]).
    pub live_watermark: u64,
    /// See [`Logged::items_watermark`].
    pub live_items_watermark: u64,
}

/// Events of the model's live log to train on with the fetched ones: the interactions among
/// the log's first `watermark` events (numbered from 0). The version records the watermark,
/// and serving's overlay keeps only the events at or above it, so no event counts twice.
#[derive(Debug, Clone, Default)]
pub struct Logged {
    pub events: Vec<LoggedEvent>,
    pub watermark: u64,
    /// The item log's changes numbered below this were logged before the fetch began: the
    /// fetched items are the source's word on them.
    pub items_watermark: u64,
}

#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub user_id: String,
    pub item_id: String,
    /// Seconds since the epoch.
    pub time: i64,
    pub kind: String,
    pub value: f32,
}

impl FetchStats {
    /// One line per thing that was skipped, for the status log.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut add = |n: u64, what: &str| {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        };
        add(
            self.events_skipped_null_id,
            "events skipped: null user_id or item_id",
        );
        add(
            self.events_skipped_null_time,
            "events skipped: null timestamp",
        );
        add(
            self.items_skipped_null_id,
            "item rows skipped: null item_id",
        );
        add(
            self.items_duplicate,
            "item rows skipped: duplicate item_id (one of them is kept)",
        );
        add(
            self.users_skipped_null_id,
            "user rows skipped: null user_id",
        );
        add(
            self.users_duplicate,
            "user rows skipped: duplicate user_id (one of them is kept)",
        );
        add(
            self.impressions_skipped_null,
            "impression rows skipped: null user_id, item_id or timestamp",
        );
        add(
            self.impressions_unknown_item,
            "impression rows skipped: an item_id neither the events nor fetch.items have",
        );
        add(
            self.items_without_attributes,
            "items appear in events but not in fetch.items",
        );
        out
    }
}

/// Runs the fetch plan and builds the dataset, within `memory_limit` bytes of events held.
#[tracing::instrument(skip_all)]
/// The index of event type `name`, added on first sight.
fn intern_type(
    types: &mut Vec<String>,
    index: &mut HashMap<String, u16>,
    name: &str,
) -> Result<u16> {
    if let Some(&k) = index.get(name) {
        return Ok(k);
    }
    if types.len() >= u16::MAX as usize {
        return Err(Error::source(
            "fetch.events",
            "more than 65535 distinct event_type values",
        ));
    }
    let k = types.len() as u16;
    types.push(name.to_string());
    index.insert(name.to_string(), k);
    Ok(k)
}

pub async fn build(
    plan: FetchPlan,
    memory_limit: u64,
    logged: Logged,
    progress: &dyn Progress,
) -> Result<Dataset> {
    let mut stats = FetchStats {
        logged_events: logged.events.len() as u64,
        live_watermark: logged.watermark,
        live_items_watermark: logged.items_watermark,
        ..FetchStats::default()
    };
    let mut items = IdMap::default();
    let mut users = IdMap::default();

    let item_attributes = match plan.items {
        Some(df) => Some(
            read_entities(
                df,
                Fetch::Items,
                "item_id",
                &mut items,
                &mut stats,
                progress,
            )
            .await?,
        ),
        None => None,
    };
    let user_table = match plan.users {
        Some(df) => Some(
            read_entities(
                df,
                Fetch::Users,
                "user_id",
                &mut users,
                &mut stats,
                progress,
            )
            .await?,
        ),
        None => None,
    };
    let n_listed_items = items.len();

    // Events, in fetch order; sorted per user below.
    struct Raw {
        user: u32,
        item: u32,
        time: i64,
        kind: u16,
        value: f32,
    }
    let mut raw: Vec<Raw> = Vec::new();
    let mut event_types: Vec<String> = Vec::new();
    let mut type_index: HashMap<String, u16> = HashMap::new();
    let mut seen_item = vec![false; n_listed_items];
    progress.start("fetch events", None);
    let mut stream = fetch::stream(plan.events, Fetch::Events).await?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| fetch::read_error(Fetch::Events, e))?;
        stats.event_rows += batch.num_rows() as u64;
        // The events held count against the fetch's budget too (DataFusion's pool sees only
        // its own operators).
        if (stats.event_rows as usize).saturating_mul(std::mem::size_of::<Raw>()) as u64
            > memory_limit
        {
            return Err(fetch::over_budget(
                Fetch::Events,
                &format!("{} events read", stats.event_rows),
            ));
        }
        let user_col = text_column(&batch, "user_id")?;
        let item_col = text_column(&batch, "item_id")?;
        let time_col = time_column(&batch)?;
        let type_col = match batch.column_by_name("event_type") {
            Some(_) => Some(text_column(&batch, "event_type")?),
            None => None,
        };
        let value_col = match batch.column_by_name("value") {
            Some(c) => Some(cast(c, &DataType::Float32).map_err(source)?),
            None => None,
        };
        let (u, i, t) = (
            user_col.as_string::<i32>(),
            item_col.as_string::<i32>(),
            time_col.as_primitive::<Int64Type>(),
        );
        let ty = type_col.as_ref().map(|c| c.as_string::<i32>());
        let val = value_col.as_ref().map(|c| c.as_primitive::<Float32Type>());
        for row in 0..batch.num_rows() {
            if u.is_null(row) || i.is_null(row) {
                stats.events_skipped_null_id += 1;
                continue;
            }
            if t.is_null(row) {
                stats.events_skipped_null_time += 1;
                continue;
            }
            let kind_name = match ty {
                Some(c) if !c.is_null(row) => c.value(row),
                _ => "event",
            };
            let kind = intern_type(&mut event_types, &mut type_index, kind_name)?;
            let item = items.intern(i.value(row));
            if (item as usize) < n_listed_items {
                seen_item[item as usize] = true;
            }
            raw.push(Raw {
                user: users.intern(u.value(row)),
                item,
                time: t.value(row),
                kind,
                value: match val {
                    Some(v) if !v.is_null(row) => v.value(row),
                    _ => 1.0,
                },
            });
        }
        progress.inc(batch.num_rows() as u64);
    }
    progress.finish();
    for e in logged.events {
        let kind = intern_type(&mut event_types, &mut type_index, &e.kind)?;
        let item = items.intern(&e.item_id);
        if (item as usize) < n_listed_items {
            seen_item[item as usize] = true;
        }
        raw.push(Raw {
            user: users.intern(&e.user_id),
            item,
            time: e.time,
            kind,
            value: e.value,
        });
    }
    if raw.is_empty() {
        return Err(Error::source(
            "fetch.events",
            "returned no usable event; check the SQL and the data",
        ));
    }
    stats.items_without_events = seen_item.iter().filter(|s| !**s).count() as u64;
    if item_attributes.is_some() {
        stats.items_without_attributes = (items.len() - n_listed_items) as u64;
    }

    // Dense ids in sorted order, so that nothing depends on which partition arrived first.
    let (users, user_map) = users.sorted();
    let (items, item_map) = items.sorted();
    for r in &mut raw {
        r.user = user_map[r.user as usize];
        r.item = item_map[r.item as usize];
    }

    // Counting sort by user, then a stable sort by time within each user: equal times keep
    // the order the fetch yielded them in.
    let n_users = users.len();
    let mut offsets = vec![0usize; n_users + 1];
    for r in &raw {
        offsets[r.user as usize + 1] += 1;
    }
    for u in 0..n_users {
        offsets[u + 1] += offsets[u];
    }
    let mut order = vec![0u32; raw.len()];
    let mut cursor = offsets.clone();
    for (idx, r) in raw.iter().enumerate() {
        order[cursor[r.user as usize]] = idx as u32;
        cursor[r.user as usize] += 1;
    }
    for u in 0..n_users {
        order[offsets[u]..offsets[u + 1]].sort_by_key(|&idx| raw[idx as usize].time);
    }
    let seq_items: Vec<u32> = order.iter().map(|&i| raw[i as usize].item).collect();
    let seq_times: Vec<i64> = order.iter().map(|&i| raw[i as usize].time).collect();
    let seq_types: Vec<u16> = order.iter().map(|&i| raw[i as usize].kind).collect();
    let seq_values: Vec<f32> = order.iter().map(|&i| raw[i as usize].value).collect();
    drop(raw);

    let item_attributes = item_attributes
        .map(|t| t.aligned(&items, &item_map))
        .transpose()?;
    let user_attributes = user_table
        .map(|t| t.aligned(&users, &user_map))
        .transpose()?;
    let impressions = match plan.impressions {
        Some(df) => {
            let read = super::impressions::read(df, &users, &items, memory_limit, progress).await?;
            stats.impression_rows = read.len() as u64;
            stats.impressions_skipped_null = read.skipped_null;
            stats.impressions_unknown_item = read.skipped_unknown_item;
            Some(read)
        }
        None => None,
    };
    Ok(Dataset {
        impressions,
        users,
        items,
        event_types,
        offsets,
        seq_items,
        seq_times,
        seq_types,
        seq_values,
        item_attributes,
        user_attributes,
        stats,
    })
}

/// An attribute table with its id column as text, and for each dense id the row holding it.
struct EntityTable {
    batch: RecordBatch,
    /// dense id → row in `batch`, for ids the table lists.
    rows: Vec<u32>,
}

impl EntityTable {
    /// One row per dense id of `ids` (renumbered by `old_to_new` since the table was read); ids
    /// the table does not list get nulls (and their id).
    fn aligned(self, ids: &IdMap, old_to_new: &[u32]) -> Result<RecordBatch> {
        let mut by_new: Vec<Option<u32>> = vec![None; ids.len()];
        for (old, &row) in self.rows.iter().enumerate() {
            by_new[old_to_new[old] as usize] = Some(row);
        }
        let indices: UInt32Array = by_new.into_iter().collect();
        let mut batch = take_record_batch(&self.batch, &indices).map_err(internal)?;
        // Fill the id column for ids that only appear in events.
        let id_col: ArrayRef = Arc::new(datafusion::arrow::array::StringArray::from_iter_values(
            ids.ids().iter(),
        ));
        let mut cols = batch.columns().to_vec();
        cols[0] = id_col;
        batch = RecordBatch::try_new(batch.schema(), cols).map_err(internal)?;
        Ok(batch)
    }
}

async fn read_entities(
    df: datafusion::dataframe::DataFrame,
    which: Fetch,
    id_name: &str,
    ids: &mut IdMap,
    stats: &mut FetchStats,
    progress: &dyn Progress,
) -> Result<EntityTable> {
    progress.start(
        &format!(
            "fetch {}",
            if which == Fetch::Items {
                "items"
            } else {
                "users"
            }
        ),
        None,
    );
    let mut stream = fetch::stream(df, which).await?;
    let mut batches = Vec::new();
    let mut rows: Vec<u32> = Vec::new();
    let mut next_row = 0u32;
    let mut schema: Option<Arc<Schema>> = None;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| Error::source(which.field(), e.strip_backtrace()))?;
        let id_col = text_column(&batch, id_name)?;
        let id_arr = id_col.as_string::<i32>();
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if id_arr.is_null(row) {
                if which == Fetch::Items {
                    stats.items_skipped_null_id += 1
                } else {
                    stats.users_skipped_null_id += 1
                }
                continue;
            }
            let before = ids.len();
            let dense = ids.intern(id_arr.value(row));
            if ids.len() == before {
                if which == Fetch::Items {
                    stats.items_duplicate += 1
                } else {
                    stats.users_duplicate += 1
                }
                continue;
            }
            debug_assert_eq!(dense as usize, rows.len());
            rows.push(next_row);
            next_row += 1;
            keep.push(row as u32);
        }
        if which == Fetch::Items {
            stats.item_rows += batch.num_rows() as u64
        } else {
            stats.user_rows += batch.num_rows() as u64
        }
        // Id first and as text; other columns as fetched.
        let mut fields = vec![Field::new(id_name, DataType::Utf8, true)];
        let mut cols: Vec<ArrayRef> = vec![id_col.clone()];
        for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
            if f.name() != id_name {
                fields.push(f.as_ref().clone().with_nullable(true));
                cols.push(c.clone());
            }
        }
        let s = Arc::new(Schema::new(fields));
        let full = RecordBatch::try_new(s.clone(), cols).map_err(internal)?;
        let kept = take_record_batch(&full, &UInt32Array::from(keep)).map_err(internal)?;
        schema.get_or_insert(s);
        progress.inc(batch.num_rows() as u64);
        batches.push(kept);
    }
    progress.finish();
    let schema = match schema {
        Some(s) => s,
        None => Arc::new(Schema::new(vec![Field::new(
            id_name,
            DataType::Utf8,
            false,
        )])),
    };
    let batch = concat_batches(&schema, &batches).map_err(internal)?;
    Ok(EntityTable { batch, rows })
}

pub(super) fn text_column(batch: &RecordBatch, name: &str) -> Result<ArrayRef> {
    let col = batch.column_by_name(name).ok_or_else(|| {
        Error::Internal(format!("planned column `{name}` is missing from a batch"))
    })?;
    cast(col, &DataType::Utf8).map_err(source)
}

/// `timestamp` as integer seconds since the epoch.
pub(super) fn time_column(batch: &RecordBatch) -> Result<ArrayRef> {
    let col = batch.column_by_name("timestamp").ok_or_else(|| {
        Error::Internal("planned column `timestamp` is missing from a batch".into())
    })?;
    let secs = match col.data_type() {
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            cast(col, &DataType::Timestamp(TimeUnit::Second, None)).map_err(source)?
        }
        _ => col.clone(),
    };
    cast(&secs, &DataType::Int64).map_err(source)
}

fn source(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::source("fetch.events", e.to_string())
}

fn internal(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::Internal(e.to_string())
}
