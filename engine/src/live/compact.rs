//! Compaction and retention of a model's event log. A closed segment (not the last) whose
//! events the serving version trained on (below its watermark) and that are older than the
//! live horizon is rewritten as one Parquet file, `events/compacted/<first>-<end>-<newest>.parquet`
//! (events numbered `first..end`, the newest at `newest` seconds), and then removed. Later
//! versions train on the compacted files and the segments alike ([`super::for_training`]);
//! compacted files older than `events.retention` are deleted. Runs under the log's lock, so
//! that no writer appends or catches up in between.
//!
//! A crash between writing a file and removing its segment leaves both: readers skip the
//! segment's events that a compacted file holds (by number), and the next compaction removes
//! the segment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema, UInt32Type, UInt64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;

use super::event::Event;
use super::log::{lock, read_segment, segment_path, segments};
use crate::error::{Error, Result};
use crate::expr::LIVE_HORIZON;

/// What a compaction did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Compaction {
    /// Segments rewritten as Parquet (and removed).
    pub segments: usize,
    pub events: usize,
    /// Compacted files deleted for `events.retention`.
    pub expired: usize,
}

/// One compacted file's events, each with its number in the log.
pub struct Compacted {
    /// Events numbered below this are in this file or earlier ones.
    pub end: u64,
    pub events: Vec<(u64, Event)>,
}

fn folder(dir: &Path) -> PathBuf {
    dir.join("compacted")
}

/// The compacted files of the log in `dir`, in log order, with their range and newest time.
fn files(dir: &Path) -> Result<Vec<(u64, u64, i64, PathBuf)>> {
    let folder = folder(dir);
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::storage(format!("listing {}", folder.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".parquet") else {
            continue;
        };
        let parts: Vec<&str> = stem.split('-').collect();
        if let [a, b, c] = parts[..] {
            if let (Ok(first), Ok(end), Ok(newest)) = (a.parse(), b.parse(), c.parse()) {
                out.push((first, end, newest, entry.path()));
            }
        }
    }
    out.sort_by_key(|f| f.0);
    Ok(out)
}

/// Where the compacted files end: events numbered below it are in them.
pub(super) fn compacted_end(dir: &Path) -> Result<u64> {
    Ok(files(dir)?.iter().map(|f| f.1).max().unwrap_or(0))
}

/// Every compacted file's events.
pub(super) fn read(dir: &Path) -> Result<Vec<Compacted>> {
    files(dir)?
        .into_iter()
        .map(|(_, end, _, path)| {
            Ok(Compacted {
                end,
                events: read_file(&path)?,
            })
        })
        .collect()
}

/// Compacts what the serving version (trained below `watermark`) no longer needs from the
/// log, and deletes compacted files older than `retention` seconds (when set). `now` is
/// seconds since the epoch.
#[tracing::instrument(skip_all, fields(dir = %dir.display()))]
pub fn compact(dir: &Path, watermark: u64, retention: Option<i64>, now: f64) -> Result<Compaction> {
    let mut done = Compaction::default();
    if !dir.exists() {
        return Ok(done);
    }
    let _lock = lock(dir)?;
    let all = segments(dir)?;
    let compacted = compacted_end(dir)?;
    // The last segment is the one writers append to: never compacted.
    for &n in all.iter().take(all.len().saturating_sub(1)) {
        let in_segment = read_segment::<Event>(dir, n)?;
        let Some(last) = in_segment.last() else {
            remove(dir, n)?;
            continue;
        };
        let (first, end) = (in_segment[0].seq, last.seq + last.entries.len() as u64);
        let newest = in_segment
            .iter()
            .flat_map(|r| &r.entries)
            .map(|e| e.timestamp)
            .fold(f64::MIN, f64::max);
        if end > watermark || newest >= now - LIVE_HORIZON as f64 {
            // Later segments are newer still.
            break;
        }
        if end > compacted {
            let events: Vec<(u64, Event)> =
                in_segment.into_iter().flat_map(|r| r.numbered()).collect();
            done.events += events.len();
            write_file(dir, first, end, newest as i64, &events)?;
        }
        remove(dir, n)?;
        done.segments += 1;
    }
    if let Some(keep) = retention {
        for (_, _, newest, path) in files(dir)? {
            if (newest as f64) < now - keep as f64 {
                std::fs::remove_file(&path)
                    .map_err(|e| Error::storage(format!("removing {}", path.display()), e))?;
                done.expired += 1;
            }
        }
        if done.expired > 0 {
            sync_dir(&folder(dir))?;
        }
    }
    Ok(done)
}

fn remove(dir: &Path, n: u32) -> Result<()> {
    let path = segment_path(dir, n);
    std::fs::remove_file(&path)
        .map_err(|e| Error::storage(format!("removing {}", path.display()), e))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::storage(format!("syncing {}", dir.display()), e))
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new("event_id", DataType::Utf8, true),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("item_id", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("timestamp", DataType::Float64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("request_id", DataType::Utf8, true),
        Field::new("position", DataType::UInt32, true),
        // An impression's features, as a JSON object.
        Field::new("features", DataType::Utf8, true),
        // The experiment variant of an impression (`experiment/variant`).
        Field::new("variant", DataType::Utf8, true),
    ]))
}

/// Writes one compacted file: a temporary name, fsynced, renamed, the folder fsynced.
fn write_file(
    dir: &Path,
    first: u64,
    end: u64,
    newest: i64,
    events: &[(u64, Event)],
) -> Result<()> {
    let folder = folder(dir);
    if !folder.exists() {
        std::fs::create_dir_all(&folder)
            .map_err(|e| Error::storage(format!("creating {}", folder.display()), e))?;
        sync_dir(dir)?;
    }
    let e = |i: usize| &events[i].1;
    let n = events.len();
    let text =
        |f: &dyn Fn(&Event) -> Option<&str>| -> StringArray { (0..n).map(|i| f(e(i))).collect() };
    let batch = RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(UInt64Array::from_iter_values(events.iter().map(|x| x.0))),
            Arc::new(text(&|e| e.event_id.as_deref())),
            Arc::new(text(&|e| Some(&e.user_id))),
            Arc::new(text(&|e| Some(&e.item_id))),
            Arc::new(text(&|e| Some(&e.kind))),
            Arc::new(Float64Array::from_iter_values(
                events.iter().map(|x| x.1.timestamp),
            )),
            Arc::new(events.iter().map(|x| x.1.value).collect::<Float64Array>()),
            Arc::new(text(&|e| e.request_id.as_deref())),
            Arc::new(events.iter().map(|x| x.1.position).collect::<UInt32Array>()),
            Arc::new(
                events
                    .iter()
                    .map(|x| {
                        x.1.features
                            .as_ref()
                            .and_then(|f| serde_json::to_string(f).ok())
                    })
                    .collect::<StringArray>(),
            ),
            Arc::new(text(&|e| e.variant.as_deref())),
        ],
    )
    .map_err(|e| Error::Internal(format!("compacting events: {e}")))?;
    let path = folder.join(format!("{first:020}-{end:020}-{newest}.parquet"));
    let tmp = folder.join(format!(".{first:020}.parquet.tmp"));
    let io = |e: std::io::Error| Error::storage(format!("writing {}", tmp.display()), e);
    let file = File::create(&tmp).map_err(io)?;
    let mut w = ArrowWriter::try_new(file.try_clone().map_err(io)?, schema(), None)
        .map_err(|e| Error::Internal(format!("compacting events: {e}")))?;
    w.write(&batch)
        .and_then(|_| w.close().map(|_| ()))
        .map_err(|e| Error::Internal(format!("compacting events: {e}")))?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path)
        .map_err(|e| Error::storage(format!("renaming {}", tmp.display()), e))?;
    sync_dir(&folder)
}

fn read_file(path: &Path) -> Result<Vec<(u64, Event)>> {
    let bad = |e: String| Error::Internal(format!("reading {}: {e}", path.display()));
    let file =
        File::open(path).map_err(|e| Error::storage(format!("opening {}", path.display()), e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    for batch in reader {
        let b = batch.map_err(|e| bad(e.to_string()))?;
        let col = |name: &str| {
            b.column_by_name(name)
                .cloned()
                .ok_or_else(|| bad(format!("no column `{name}`")))
        };
        let (seq, id, user, item, kind, time, value, request, position) = (
            col("seq")?,
            col("event_id")?,
            col("user_id")?,
            col("item_id")?,
            col("type")?,
            col("timestamp")?,
            col("value")?,
            col("request_id")?,
            col("position")?,
        );
        let seq = seq.as_primitive::<UInt64Type>();
        let (id, user, item, kind, request) = (
            id.as_string::<i32>(),
            user.as_string::<i32>(),
            item.as_string::<i32>(),
            kind.as_string::<i32>(),
            request.as_string::<i32>(),
        );
        let (time, value) = (
            time.as_primitive::<Float64Type>(),
            value.as_primitive::<Float64Type>(),
        );
        let position = position.as_primitive::<UInt32Type>();
        let features = b
            .column_by_name("features")
            .map(|c| c.as_string::<i32>().clone());
        // Files compacted before variants were logged have no such column.
        let variant = b
            .column_by_name("variant")
            .map(|c| c.as_string::<i32>().clone());
        let opt = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
        for i in 0..b.num_rows() {
            out.push((
                seq.value(i),
                Event {
                    event_id: opt(id, i),
                    user_id: user.value(i).to_string(),
                    item_id: item.value(i).to_string(),
                    kind: kind.value(i).to_string(),
                    timestamp: time.value(i),
                    value: value.is_valid(i).then(|| value.value(i)),
                    request_id: opt(request, i),
                    position: position.is_valid(i).then(|| position.value(i)),
                    features: features
                        .as_ref()
                        .filter(|f| f.is_valid(i))
                        .and_then(|f| serde_json::from_str(f.value(i)).ok()),
                    variant: variant.as_ref().and_then(|v| opt(v, i)),
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EventsConfig;
    use crate::live::event::test_event;
    use crate::live::{for_training, log_dir, EventLog};

    fn event(k: usize, time: f64) -> Event {
        Event {
            event_id: Some(format!("e{k}")),
            timestamp: time,
            ..test_event(&format!("u{}", k % 3), &format!("i{k}"), "click")
        }
    }

    #[test]
    fn old_segments_move_to_parquet_keep_training_and_dedup_and_expire() {
        let home = tempfile::tempdir().unwrap();
        let dir = log_dir(home.path());
        let now = 10.0 * 86_400.0;
        let log = EventLog::open_sized(&dir, 200).unwrap();
        // Ten batches, about one segment each: the first six a week old, the rest recent.
        for k in 0..10 {
            let time = if k < 6 {
                now - 7.0 * 86_400.0
            } else {
                now - 60.0
            };
            log.append(vec![event(2 * k, time), event(2 * k + 1, time)])
                .unwrap();
        }
        drop(log);
        let before = segments(&dir).unwrap().len();
        assert!(before >= 5, "{before} segments");
        let config = EventsConfig::default();
        let trained = for_training(home.path(), &config).unwrap();
        assert_eq!((trained.events.len(), trained.watermark), (20, 20));

        // The version trained on the first 16 events: the old segments below it go.
        let c = compact(&dir, 16, None, now).unwrap();
        assert!(c.segments >= 3 && c.events == 2 * c.segments, "{c:?}");
        assert!(segments(&dir).unwrap().len() < before);
        // Training reads the same events, once; the watermark holds.
        let again = for_training(home.path(), &config).unwrap();
        assert_eq!((again.events.len(), again.watermark), (20, 20));
        // A compacted event id is still a duplicate.
        let log = EventLog::open_sized(&dir, 200).unwrap();
        let a = log.append(vec![event(0, now), event(20, now)]).unwrap();
        assert_eq!((a.accepted, a.duplicates), (1, 1));
        drop(log);
        // Nothing more to compact: idempotent.
        assert_eq!(compact(&dir, 16, None, now).unwrap().segments, 0);

        // Retention: compacted files older than three days are deleted, and training skips
        // logged events past it.
        let c = compact(&dir, 16, Some(3 * 86_400), now).unwrap();
        assert!(c.expired >= 1, "{c:?}");
        assert!(files(&dir).unwrap().is_empty());
        let kept = for_training(
            home.path(),
            &EventsConfig {
                retention: Some("3d".into()),
                ..EventsConfig::default()
            },
        );
        // (for_training uses the clock: the events of this test are all from 1970.)
        assert_eq!(kept.unwrap().events.len(), 0);
    }
}
