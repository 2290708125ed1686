//! Arrow IPC files for attribute tables: readable by any Arrow implementation.

use std::path::Path;

use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;

use crate::error::{Error, IoContext, Result};

pub fn write_table(path: &Path, batch: &RecordBatch) -> Result<()> {
    let ctx = || format!("writing {}", path.display());
    let file = std::fs::File::create(path).ctx(ctx)?;
    let mut w =
        FileWriter::try_new(&file, &batch.schema()).map_err(|e| Error::Internal(e.to_string()))?;
    w.write(batch).map_err(|e| Error::Internal(e.to_string()))?;
    w.finish().map_err(|e| Error::Internal(e.to_string()))?;
    file.sync_all().ctx(ctx)
}

pub fn read_table(path: &Path) -> Result<RecordBatch> {
    let file = std::fs::File::open(path).ctx(|| format!("reading {}", path.display()))?;
    let reader = FileReader::try_new(file, None)
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?;
    datafusion::arrow::compute::concat_batches(&schema, &batches)
        .map_err(|e| Error::Internal(e.to_string()))
}
