//! The vector store of a version: Lance datasets that any Lance reader (Python `lance`, DuckDB,
//! DataFusion) can open.
//!
//! ```text
//! <version>/lance/items.lance            item_id, attributes…, vector_<policy>: FixedSizeList<Float32, d>
//! <version>/lance/users.lance            user_id, attributes…, vector_<policy>
//! <version>/lance/ivf/<policy>/codes.lance      the IVF_SQ8 index, one row per item in partition
//!                                        order: partition, item (row of items.lance), code: FixedSizeList<UInt8, d>
//! <version>/lance/ivf/<policy>/centroids.lance  partition, centroid, size; the quantiser and
//!                                        tuned probes in the schema metadata (`feed.ivf`)
//! ```
//!
//! Rows of `items.lance` and `users.lance` are in dense-id order. Everything here goes through
//! Lance and its object store, never `std::fs`, so a version folder may be an object-store URI
//! (`s3://…`) as well as a local path.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float32Array, RecordBatch, RecordBatchIterator,
    UInt32Array, UInt8Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Float32Type, Schema, UInt32Type, UInt8Type};
use lance::dataset::{WriteMode, WriteParams};
use lance::Dataset;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::vectors::Ivf;

/// The folder (or URI prefix) of a version's Lance datasets.
pub fn root(version_uri: &str) -> String {
    format!("{}/lance", version_uri.trim_end_matches('/'))
}

/// The name of a policy's vector column.
pub fn vector_column(policy: &str) -> String {
    format!("vector_{policy}")
}

/// Vectors of one policy, row-major.
pub struct NamedVectors<'a> {
    pub policy: &'a str,
    pub dim: usize,
    pub values: &'a [f32],
}

/// Writes `<root>/<name>.lance`: `table` (the id and attribute columns, one row per dense id)
/// with one vector column per policy.
pub fn write_table_with_vectors(
    root: &str,
    name: &str,
    table: &RecordBatch,
    vectors: &[NamedVectors<'_>],
) -> Result<()> {
    let mut fields: Vec<Arc<Field>> = table.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = table.columns().to_vec();
    for v in vectors {
        let column = vector_column(v.policy);
        if fields.iter().any(|f| f.name() == &column) {
            return Err(Error::invalid(
                format!("fetch.{name}"),
                format!("the {name} table already has a column `{column}`; rename that attribute"),
            ));
        }
        let array = fixed_size_list_f32(v.values, v.dim)?;
        fields.push(Arc::new(Field::new(
            column,
            array.data_type().clone(),
            false,
        )));
        columns.push(Arc::new(array));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(e.to_string()))?;
    write(&format!("{root}/{name}.lance"), batch)
}

/// Reads one policy's vectors (`n × dim`, row-major) from `<root>/<name>.lance`.
pub fn read_vectors(root: &str, name: &str, policy: &str) -> Result<(usize, Vec<f32>)> {
    let uri = format!("{root}/{name}.lance");
    let column = vector_column(policy);
    let (batch, _) = read(&uri, Some(&[column.as_str()]))?;
    let list = batch
        .column(0)
        .as_fixed_size_list_opt()
        .ok_or_else(|| Error::Internal(format!("{uri}: `{column}` is not a vector column")))?;
    let dim = list.value_length() as usize;
    let values = list
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    Ok((dim, values))
}

/// What the centroids dataset's metadata carries besides the centroids.
#[derive(Serialize, Deserialize)]
struct IvfMeta {
    dim: usize,
    mins: Vec<f32>,
    scales: Vec<f32>,
    refine_factor: usize,
    probes: Vec<usize>,
    tuned_recall: Vec<f32>,
}

const IVF_META: &str = "feed.ivf";

/// Writes a policy's IVF index as two Lance datasets.
pub fn write_ivf(root: &str, policy: &str, ivf: &Ivf) -> Result<()> {
    let parts = ivf.partitions();
    let mut partition = Vec::with_capacity(ivf.ids.len());
    for p in 0..parts {
        let size = (ivf.offsets[p + 1] - ivf.offsets[p]) as usize;
        partition.extend(std::iter::repeat_n(p as u32, size));
    }
    let codes = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::UInt8, false)),
        ivf.dim as i32,
        Arc::new(UInt8Array::from(ivf.codes.clone())),
        None,
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    let rows = RecordBatch::try_from_iter(vec![
        (
            "partition",
            Arc::new(UInt32Array::from(partition)) as ArrayRef,
        ),
        ("item", Arc::new(UInt32Array::from(ivf.ids.clone()))),
        ("code", Arc::new(codes)),
    ])
    .map_err(|e| Error::Internal(e.to_string()))?;
    write(&format!("{root}/ivf/{policy}/codes.lance"), rows)?;

    let meta = IvfMeta {
        dim: ivf.dim,
        mins: ivf.mins.clone(),
        scales: ivf.scales.clone(),
        refine_factor: ivf.refine_factor,
        probes: ivf.probes.clone(),
        tuned_recall: ivf.tuned_recall.clone(),
    };
    let sizes: Vec<u32> = ivf.offsets.windows(2).map(|w| w[1] - w[0]).collect();
    let centroids = fixed_size_list_f32(&ivf.centroids, ivf.dim)?;
    let schema = Schema::new(vec![
        Field::new("partition", DataType::UInt32, false),
        Field::new("centroid", centroids.data_type().clone(), false),
        Field::new("size", DataType::UInt32, false),
    ])
    .with_metadata(HashMap::from([(
        IVF_META.to_string(),
        serde_json::to_string(&meta).expect("metadata serialises"),
    )]));
    let batch = RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(UInt32Array::from_iter_values(0..parts as u32)),
            Arc::new(centroids),
            Arc::new(UInt32Array::from(sizes)),
        ],
    )
    .map_err(|e| Error::Internal(e.to_string()))?;
    write(&format!("{root}/ivf/{policy}/centroids.lance"), batch)
}

/// Reads what [`write_ivf`] wrote.
pub fn read_ivf(root: &str, policy: &str) -> Result<Ivf> {
    let uri = format!("{root}/ivf/{policy}/centroids.lance");
    let (batch, metadata) = read(&uri, None)?;
    let meta = metadata.get(IVF_META).cloned();
    let corrupt = |what: &str| Error::Internal(format!("{uri}: {what}"));
    let meta: IvfMeta = serde_json::from_str(&meta.ok_or_else(|| corrupt("no index metadata"))?)
        .map_err(|e| corrupt(&e.to_string()))?;
    let centroids = batch
        .column_by_name("centroid")
        .and_then(|c| c.as_fixed_size_list_opt())
        .ok_or_else(|| corrupt("no centroid column"))?
        .values()
        .as_primitive::<Float32Type>()
        .values()
        .to_vec();
    let sizes = batch
        .column_by_name("size")
        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
        .ok_or_else(|| corrupt("no size column"))?;
    let mut offsets = vec![0u32];
    for s in sizes.values() {
        offsets.push(offsets[offsets.len() - 1] + s);
    }

    let uri = format!("{root}/ivf/{policy}/codes.lance");
    let (rows, _) = read(&uri, Some(&["item", "code"]))?;
    let ids = rows
        .column(0)
        .as_primitive_opt::<UInt32Type>()
        .ok_or_else(|| corrupt("no item column"))?
        .values()
        .to_vec();
    let codes = rows
        .column(1)
        .as_fixed_size_list_opt()
        .ok_or_else(|| corrupt("no code column"))?
        .values()
        .as_primitive::<UInt8Type>()
        .values()
        .to_vec();
    if ids.len() != *offsets.last().unwrap_or(&0) as usize || codes.len() != ids.len() * meta.dim {
        return Err(corrupt("partition sizes disagree with the rows"));
    }
    let parts = offsets.len() - 1;
    if parts == 0
        || centroids.len() != parts * meta.dim
        || meta.mins.len() != meta.dim
        || meta.scales.len() != meta.dim
        || meta.probes.len() != crate::vectors::ivf::TUNED_K.len()
        || meta.refine_factor == 0
    {
        return Err(corrupt("the index metadata disagrees with its rows"));
    }
    Ok(Ivf {
        dim: meta.dim,
        centroids,
        offsets,
        ids,
        codes,
        mins: meta.mins,
        scales: meta.scales,
        refine_factor: meta.refine_factor,
        probes: meta.probes,
        tuned_recall: meta.tuned_recall,
    })
}

fn fixed_size_list_f32(values: &[f32], dim: usize) -> Result<FixedSizeListArray> {
    FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Float32, true)),
        dim as i32,
        Arc::new(Float32Array::from(values.to_vec())),
        None,
    )
    .map_err(|e| Error::Internal(e.to_string()))
}

/// Writes one batch as a new dataset (a version folder is new, so nothing is replaced).
fn write(uri: &str, batch: RecordBatch) -> Result<()> {
    let schema = batch.schema();
    let reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
    let params = WriteParams {
        mode: WriteMode::Create,
        ..Default::default()
    };
    block_on(async {
        Dataset::write(reader, uri, Some(params))
            .await
            .map_err(|e| lance_error(uri, e))
    })?;
    Ok(())
}

/// All rows of a dataset (the given columns, in that order, or all), in row order, with the
/// schema's metadata.
fn read(uri: &str, columns: Option<&[&str]>) -> Result<(RecordBatch, HashMap<String, String>)> {
    block_on(async {
        let ds = Dataset::open(uri).await.map_err(|e| lance_error(uri, e))?;
        let mut scan = ds.scan();
        if let Some(columns) = columns {
            scan.project(columns).map_err(|e| lance_error(uri, e))?;
        }
        let batch = scan
            .try_into_batch()
            .await
            .map_err(|e| lance_error(uri, e))?;
        Ok((batch, ds.schema().metadata.clone()))
    })
}

fn lance_error(uri: &str, e: lance::Error) -> Error {
    Error::storage(
        format!("Lance dataset {uri}"),
        std::io::Error::other(e.to_string()),
    )
}

/// Runs Lance's async API to completion from synchronous code, whatever the caller's context
/// (blocking pool, a plain thread, a test): on a small runtime of its own, on a scoped thread,
/// so that it never nests inside a runtime the caller is driving.
fn block_on<F: Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime starts")
                .block_on(f)
        })
        .join()
        .expect("a Lance call panicked")
    })
}
