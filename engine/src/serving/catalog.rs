//! The items of a version: ids, attributes, popularity and event times.

use datafusion::arrow::array::{ArrayRef, RecordBatch};

use crate::dataset::IdMap;
use crate::error::{Error, Result};

pub struct Catalog {
    /// External id ↔ dense id.
    pub(crate) ids: IdMap,
    /// `item_id` and the attributes, one row per dense item.
    pub(crate) table: RecordBatch,
    /// All-time popularity per item.
    pub(crate) popular: Vec<f32>,
    /// Items by descending popularity (ties by item order).
    pub(crate) popular_order: Vec<u32>,
    /// Each item's event times (seconds), sorted; CSR by item.
    time_offsets: Vec<u64>,
    times: Vec<i64>,
    /// The newest event time: "now" for time windows over historical data.
    pub(crate) newest_event: i64,
}

impl Catalog {
    /// A catalog from its table (whose first column is `item_id`), popularity and event times.
    pub fn new(
        table: RecordBatch,
        popular: Vec<f32>,
        time_offsets: Vec<u64>,
        times: Vec<i64>,
    ) -> Result<Self> {
        let ids = IdMap::from_ids(super::snapshot::string_column(&table, "item_id")?);
        if popular.len() != ids.len() || time_offsets.len() != ids.len() + 1 {
            return Err(Error::Internal(format!(
                "the catalog's arrays disagree: {} items, {} popularity scores, {} time offsets",
                ids.len(),
                popular.len(),
                time_offsets.len()
            )));
        }
        let mut popular_order: Vec<u32> = (0..popular.len() as u32).collect();
        popular_order.sort_by(|&a, &b| {
            popular[b as usize]
                .total_cmp(&popular[a as usize])
                .then(a.cmp(&b))
        });
        let newest_event = times.iter().copied().max().unwrap_or(0);
        Ok(Self {
            ids,
            table,
            popular,
            popular_order,
            time_offsets,
            times,
            newest_event,
        })
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// The dense id of an external item id.
    pub fn dense(&self, id: &str) -> Option<u32> {
        self.ids.get(id)
    }

    /// The external id of dense item `i`.
    pub fn id(&self, i: u32) -> &str {
        self.ids.id(i)
    }

    /// Item `i`'s event times, sorted.
    pub fn times(&self, i: u32) -> &[i64] {
        &self.times
            [self.time_offsets[i as usize] as usize..self.time_offsets[i as usize + 1] as usize]
    }

    /// An attribute column by its stored name.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.table.column_by_name(name)
    }
}
