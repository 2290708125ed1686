//! `fetch.impressions`: what was shown to whom and when, with any other columns (position,
//! request id, labels) kept as fetched. Rows are in time order (equal times keep fetch order),
//! with the dataset's dense ids; the rankers read their labels and inputs from here.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take_record_batch};
use datafusion::arrow::datatypes::{Field, Int64Type, Schema};
use futures::StreamExt;

use super::IdMap;
use crate::error::{Error, Result};
use crate::fetch::{self, Fetch};
use crate::progress::Progress;

/// The dense user id of an impression's user who has no event in the dataset.
pub const NO_USER: u32 = u32::MAX;

/// The impressions, oldest first.
#[derive(Debug)]
pub struct Impressions {
    /// Dense user ids ([`NO_USER`] for a user without events).
    pub user: Vec<u32>,
    pub item: Vec<u32>,
    /// Seconds since the epoch.
    pub time: Vec<i64>,
    /// The other columns the fetch yields, row for row.
    pub columns: RecordBatch,
    /// Rows skipped: a null id or time, or an item the catalog does not have.
    pub skipped_null: u64,
    pub skipped_unknown_item: u64,
}

impl Impressions {
    pub fn len(&self) -> usize {
        self.user.len()
    }

    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// Column `name` of the other columns.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.columns.column_by_name(name)
    }
}

/// Reads the impressions against the dataset's final dense ids, within `memory_limit` bytes.
pub async fn read(
    df: datafusion::dataframe::DataFrame,
    users: &IdMap,
    items: &IdMap,
    memory_limit: u64,
    progress: &dyn Progress,
) -> Result<Impressions> {
    progress.start("fetch impressions", None);
    let which = Fetch::Impressions;
    let mut stream = fetch::stream(df, which).await?;
    let (mut user, mut item, mut time) = (Vec::new(), Vec::new(), Vec::new());
    let mut kept_batches = Vec::new();
    let mut schema: Option<Arc<Schema>> = None;
    let (mut skipped_null, mut skipped_unknown_item, mut rows_read) = (0u64, 0u64, 0u64);
    // Per row held: two ids, a time, and the other columns' share.
    let mut bytes_held = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| fetch::read_error(which, e))?;
        rows_read += batch.num_rows() as u64;
        let u = super::build::text_column(&batch, "user_id")?;
        let i = super::build::text_column(&batch, "item_id")?;
        let t = super::build::time_column(&batch)?;
        let (u, i, t) = (
            u.as_string::<i32>(),
            i.as_string::<i32>(),
            t.as_primitive::<Int64Type>(),
        );
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            if u.is_null(row) || i.is_null(row) || t.is_null(row) {
                skipped_null += 1;
                continue;
            }
            let Some(dense_item) = items.get(i.value(row)) else {
                skipped_unknown_item += 1;
                continue;
            };
            user.push(users.get(u.value(row)).unwrap_or(NO_USER));
            item.push(dense_item);
            time.push(t.value(row));
            keep.push(row as u32);
        }
        let fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .filter(|f| !matches!(f.name().as_str(), "user_id" | "item_id" | "timestamp"))
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let columns: Vec<ArrayRef> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| !matches!(f.name().as_str(), "user_id" | "item_id" | "timestamp"))
            .map(|(_, c)| c.clone())
            .collect();
        let s = Arc::new(Schema::new(fields));
        let rest = RecordBatch::try_new_with_options(
            s.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new()
                .with_row_count(Some(batch.num_rows())),
        )
        .map_err(internal)?;
        let kept = take_record_batch(&rest, &UInt32Array::from(keep)).map_err(internal)?;
        bytes_held += kept.get_array_memory_size() as u64 + kept.num_rows() as u64 * 16;
        if bytes_held > memory_limit {
            return Err(fetch::over_budget(
                which,
                &format!("{rows_read} impressions read"),
            ));
        }
        schema.get_or_insert(s);
        kept_batches.push(kept);
        progress.inc(batch.num_rows() as u64);
    }
    progress.finish();
    let schema = schema.unwrap_or_else(|| Arc::new(Schema::empty()));
    let columns = concat_batches(&schema, &kept_batches).map_err(internal)?;
    // Oldest first; equal times keep the fetch's order.
    let mut order: Vec<u32> = (0..user.len() as u32).collect();
    order.sort_by_key(|&r| time[r as usize]);
    let columns =
        take_record_batch(&columns, &UInt32Array::from(order.clone())).map_err(internal)?;
    let pick = |v: &[u32]| order.iter().map(|&r| v[r as usize]).collect::<Vec<_>>();
    Ok(Impressions {
        user: pick(&user),
        item: pick(&item),
        time: order.iter().map(|&r| time[r as usize]).collect(),
        columns,
        skipped_null,
        skipped_unknown_item,
    })
}

fn internal(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::Internal(e.to_string())
}
