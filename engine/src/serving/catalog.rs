//! The items of a version: ids, attributes, popularity and event times; and the same catalog
//! with live changes applied ([`Catalog::with_changes`]): attribute values set, items added
//! after training, items deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::compute::{concat, interleave};
use datafusion::arrow::datatypes::DataType;

use crate::dataset::IdMap;
use crate::error::{Error, Result};

/// Changes to a catalog, resolved per item: what serving applies (it knows nothing of where
/// they came from).
#[derive(Debug, Clone, Default)]
pub struct CatalogChanges {
    /// Attribute values by item, in the order items were first changed: an item the catalog
    /// lacks is added.
    pub set: Vec<(String, BTreeMap<String, serde_json::Value>)>,
    /// Items that are never served.
    pub deleted: Vec<String>,
}

impl CatalogChanges {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.deleted.is_empty()
    }
}

#[derive(Clone)]
pub struct Catalog {
    /// External id ↔ dense id of the version's items (shared by a catalog with changes).
    ids: Arc<IdMap>,
    /// Items added after training: dense ids from `ids.len()` on.
    added: Arc<IdMap>,
    /// `item_id` and the attributes, one row per dense item.
    pub(crate) table: RecordBatch,
    /// All-time popularity per item (0 for an added item).
    pub(crate) popular: Vec<f32>,
    /// Items by descending popularity (ties by item order).
    pub(crate) popular_order: Vec<u32>,
    /// Each trained item's event times (seconds), sorted; CSR by item.
    time_offsets: Arc<Vec<u64>>,
    times: Arc<Vec<i64>>,
    /// The newest event time: "now" for time windows over historical data.
    pub(crate) newest_event: i64,
    /// Deleted items' dense ids, sorted: never eligible, never ranked.
    deleted_ids: Vec<u32>,
    /// The version's own rows, before any change (what features were fitted on); `None`: `table`.
    trained_table: Option<RecordBatch>,
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
            ids: Arc::new(ids),
            added: Arc::default(),
            table,
            popular,
            popular_order,
            time_offsets: Arc::new(time_offsets),
            times: Arc::new(times),
            newest_event,
            deleted_ids: Vec::new(),
            trained_table: None,
        })
    }

    /// Every item, added ones included.
    pub fn len(&self) -> usize {
        self.ids.len() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items the version trained on: dense ids below this; added items come after.
    pub fn trained_len(&self) -> usize {
        self.ids.len()
    }

    /// The rows of the items the version trained on, as it trained on them (no changes).
    pub fn trained_table(&self) -> &RecordBatch {
        self.trained_table.as_ref().unwrap_or(&self.table)
    }

    /// The dense id of an external item id.
    pub fn dense(&self, id: &str) -> Option<u32> {
        self.ids
            .get(id)
            .or_else(|| self.added.get(id).map(|i| i + self.ids.len() as u32))
    }

    /// The external id of dense item `i`.
    pub fn id(&self, i: u32) -> &str {
        match (i as usize).checked_sub(self.ids.len()) {
            None => self.ids.id(i),
            Some(k) => self.added.id(k as u32),
        }
    }

    /// Item `i`'s event times, sorted (none for an added item).
    pub fn times(&self, i: u32) -> &[i64] {
        if i as usize >= self.ids.len() {
            return &[];
        }
        &self.times
            [self.time_offsets[i as usize] as usize..self.time_offsets[i as usize + 1] as usize]
    }

    /// An attribute column by its stored name.
    pub fn column(&self, name: &str) -> Option<&ArrayRef> {
        self.table.column_by_name(name)
    }

    /// Whether item `i` was deleted: it is never served.
    pub fn is_deleted(&self, i: u32) -> bool {
        self.deleted_ids.binary_search(&i).is_ok()
    }

    /// The deleted items' dense ids, sorted.
    pub fn deleted_ids(&self) -> &[u32] {
        &self.deleted_ids
    }

    /// The attribute columns a change may set: every column but `item_id`.
    pub fn attribute_types(&self) -> Vec<(String, DataType)> {
        self.table
            .schema()
            .fields()
            .iter()
            .filter(|f| f.name() != "item_id")
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect()
    }

    /// This catalog (one without changes) with `changes` applied: values set in place, items
    /// the catalog lacks appended after the trained ones (no events, no popularity), deleted
    /// items marked. Values were checked against the columns' types when they were accepted
    /// ([`typed_column`]); one that no longer fits (the column's type changed with a new
    /// version) is left null.
    pub fn with_changes(&self, changes: &CatalogChanges) -> Result<Catalog> {
        let n_base = self.ids.len();
        let mut added = IdMap::default();
        // Row of each changed item, in the order of `changes.set`.
        let mut rows = Vec::with_capacity(changes.set.len());
        for (id, _) in &changes.set {
            rows.push(match self.ids.get(id) {
                Some(i) => i as usize,
                None => n_base + added.intern(id) as usize,
            });
        }
        let n = n_base + added.len();
        let schema = self.table.schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (c, field) in schema.fields().iter().enumerate() {
            let base = self.table.column(c);
            if field.name() == "item_id" {
                let new: ArrayRef = Arc::new(StringArray::from_iter_values(added.ids().iter()));
                let new = datafusion::arrow::compute::cast(&new, field.data_type())
                    .map_err(|e| Error::Internal(format!("item ids: {e}")))?;
                columns.push(
                    concat(&[base.as_ref(), new.as_ref()])
                        .map_err(|e| Error::Internal(format!("item ids: {e}")))?,
                );
                continue;
            }
            let mut values = Vec::new();
            let mut at: HashMap<usize, usize> = HashMap::new();
            for ((_, set), &row) in changes.set.iter().zip(&rows) {
                if let Some(v) = set.get(field.name()) {
                    at.insert(row, values.len());
                    values.push(v);
                }
            }
            if values.is_empty() && added.is_empty() {
                columns.push(base.clone());
                continue;
            }
            let dt = field.data_type();
            let patch = match typed_column(&values, dt) {
                Ok(patch) => patch,
                // A value that no longer fits (the column's type changed with a new version)
                // is null; the others keep theirs.
                Err(_) => {
                    let one: Vec<ArrayRef> = values
                        .iter()
                        .map(|v| typed_column(&[v], dt).unwrap_or_else(|_| new_null_array(dt, 1)))
                        .collect();
                    concat(&one.iter().map(|a| a.as_ref()).collect::<Vec<_>>())
                        .map_err(|e| Error::Internal(format!("column `{}`: {e}", field.name())))?
                }
            };
            let null = new_null_array(field.data_type(), 1);
            let indices: Vec<(usize, usize)> = (0..n)
                .map(|row| match at.get(&row) {
                    Some(&k) => (1, k),
                    None if row < n_base => (0, row),
                    None => (2, 0),
                })
                .collect();
            columns.push(
                interleave(&[base.as_ref(), patch.as_ref(), null.as_ref()], &indices)
                    .map_err(|e| Error::Internal(format!("column `{}`: {e}", field.name())))?,
            );
        }
        let table = RecordBatch::try_new(schema, columns)
            .map_err(|e| Error::Internal(format!("the changed catalog: {e}")))?;
        let mut popular = self.popular.clone();
        popular.resize(n, 0.0);
        // Popularity is a count: an added item (0) ranks after every trained item with the same
        // score, as its dense id is larger; the order needs no sort.
        let mut popular_order = self.popular_order.clone();
        popular_order.extend(n_base as u32..n as u32);
        let mut deleted_ids: Vec<u32> = changes
            .deleted
            .iter()
            .filter_map(|id| {
                self.ids
                    .get(id)
                    .or_else(|| added.get(id).map(|i| i + n_base as u32))
            })
            .collect();
        deleted_ids.sort_unstable();
        deleted_ids.dedup();
        Ok(Catalog {
            ids: self.ids.clone(),
            added: Arc::new(added),
            table,
            popular,
            popular_order,
            time_offsets: self.time_offsets.clone(),
            times: self.times.clone(),
            newest_event: self.newest_event,
            deleted_ids,
            trained_table: Some(self.table.clone()),
        })
    }
}

/// `values` (JSON) as a column of `data_type`: numbers, text, true/false or null, converted as
/// Arrow casts them (text to a date or time parses it). The error names the first value that
/// does not fit, by its index, and what the column takes.
pub fn typed_column(
    values: &[&serde_json::Value],
    data_type: &DataType,
) -> std::result::Result<ArrayRef, (usize, String)> {
    use datafusion::arrow::array::{BooleanArray, Float64Array, Int64Array};
    use serde_json::Value;
    let what = describe(data_type);
    let wrong = |k: usize, v: &Value| (k, format!("{v} does not fit a column of {what}"));
    // One JSON kind per array: the first non-null value's.
    let kind = values.iter().find(|v| !v.is_null());
    let array: ArrayRef = match kind {
        None => new_null_array(data_type, values.len()),
        Some(Value::Bool(_)) => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::Null => Ok(None),
                    Value::Bool(b) => Ok(Some(*b)),
                    _ => Err(wrong(k, v)),
                })
                .collect::<std::result::Result<BooleanArray, _>>()?,
        ),
        Some(Value::Number(_)) if values.iter().all(|v| v.is_null() || v.is_i64()) => {
            Arc::new(values.iter().map(|v| v.as_i64()).collect::<Int64Array>())
        }
        Some(Value::Number(_)) => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::Null => Ok(None),
                    Value::Number(n) => Ok(n.as_f64()),
                    _ => Err(wrong(k, v)),
                })
                .collect::<std::result::Result<Float64Array, _>>()?,
        ),
        Some(Value::String(_)) => Arc::new(
            values
                .iter()
                .enumerate()
                .map(|(k, v)| match v {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.as_str())),
                    _ => Err(wrong(k, v)),
                })
                .collect::<std::result::Result<StringArray, _>>()?,
        ),
        Some(v) => return Err(wrong(0, v)),
    };
    let source = array.data_type().clone();
    let fits = match (&source, data_type) {
        (a, b) if a == b => true,
        (DataType::Null, _) => true,
        (DataType::Boolean, b) => b == &DataType::Boolean,
        (DataType::Int64 | DataType::Float64, b) => b.is_numeric(),
        (DataType::Utf8, b) => !b.is_numeric() && b != &DataType::Boolean,
        _ => false,
    };
    if !fits {
        let k = values.iter().position(|v| !v.is_null()).unwrap_or(0);
        return Err(wrong(k, values[k]));
    }
    let options = datafusion::arrow::compute::CastOptions {
        safe: true,
        ..Default::default()
    };
    let cast = datafusion::arrow::compute::cast_with_options(&array, data_type, &options)
        .map_err(|e| (0, format!("{e}")))?;
    // A safe cast turns what does not convert (text that is no date, 3.5 into an integer
    // column, a number out of range) into null: name the first such value.
    for (k, &value) in values.iter().enumerate() {
        let lost = cast.is_null(k) && !value.is_null();
        let truncated = matches!(value, Value::Number(n) if !n.is_i64() && !n.is_u64())
            && data_type.is_integer();
        if lost || truncated {
            return Err(wrong(k, value));
        }
    }
    Ok(cast)
}

/// A column type in words, for errors.
fn describe(t: &DataType) -> String {
    if t.is_integer() {
        "whole numbers".into()
    } else if t.is_numeric() {
        "numbers".into()
    } else {
        match t {
            DataType::Boolean => "true/false".into(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
            DataType::Date32 | DataType::Date64 => "dates (text such as 2026-12-01)".into(),
            DataType::Timestamp(..) => "times (text such as 2026-12-01T10:00:00Z)".into(),
            other => format!("type {other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, BooleanArray, Float64Array};
    use datafusion::arrow::datatypes::{Field, Float64Type, Schema};
    use serde_json::json;

    fn catalog() -> Catalog {
        let schema = Schema::new(vec![
            Field::new("item_id", DataType::Utf8, false),
            Field::new("price", DataType::Float64, true),
            Field::new("in_stock", DataType::Boolean, true),
        ]);
        let table = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringArray::from(vec!["a", "b", "c"])),
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0])),
                Arc::new(BooleanArray::from(vec![true, true, true])),
            ],
        )
        .unwrap();
        Catalog::new(table, vec![5.0, 0.0, 9.0], vec![0, 1, 1, 2], vec![10, 20]).unwrap()
    }

    #[test]
    fn changes_set_values_add_items_and_mark_deletions() {
        let base = catalog();
        let changes = CatalogChanges {
            set: vec![
                ("b".into(), [("in_stock".to_string(), json!(false))].into()),
                ("new".into(), [("price".to_string(), json!(7))].into()),
            ],
            deleted: vec!["c".into(), "never".into()],
        };
        let c = base.with_changes(&changes).unwrap();
        assert_eq!((c.len(), c.trained_len()), (4, 3));
        assert_eq!((c.dense("new"), c.id(3)), (Some(3), "new"));
        let stock = c.column("in_stock").unwrap().as_boolean();
        assert_eq!(
            (0..4)
                .map(|i| stock.is_valid(i).then(|| stock.value(i)))
                .collect::<Vec<_>>(),
            vec![Some(true), Some(false), Some(true), None]
        );
        let price = c.column("price").unwrap().as_primitive::<Float64Type>();
        assert_eq!((price.value(0), price.value(3)), (1.0, 7.0));
        assert_eq!(c.popular_order, vec![2, 0, 1, 3]);
        assert!(c.is_deleted(2) && !c.is_deleted(1));
        assert_eq!((c.times(0), c.times(3)), (&[10i64][..], &[][..]));
        // The base is untouched.
        assert_eq!((base.len(), base.dense("new")), (3, None));
    }

    #[test]
    fn values_are_checked_against_the_column_type() {
        let v = [json!(1), json!(2.5)];
        let refs: Vec<_> = v.iter().collect();
        assert!(typed_column(&refs, &DataType::Float64).is_ok());
        let (k, e) = typed_column(&refs, &DataType::Int64).unwrap_err();
        assert_eq!(k, 1, "{e}");
        assert!(e.contains("whole numbers"), "{e}");
        let t = json!("yes");
        let (_, e) = typed_column(&[&t], &DataType::Boolean).unwrap_err();
        assert!(e.contains("true/false"), "{e}");
        let d = json!("2026-12-01");
        assert!(typed_column(&[&d], &DataType::Date32).is_ok());
        let bad = json!("soon");
        assert!(typed_column(&[&bad], &DataType::Date32).is_err());
        let n = json!(5);
        assert!(typed_column(&[&n], &DataType::Utf8).is_err());
    }
}
