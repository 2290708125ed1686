//! The per-model event log: what `POST /models/{m}/events` acknowledges is here, on disk, first.
//!
//! Layout: `<model>/events/00000001.log`, `00000002.log`, … Each segment is a sequence of
//! records, one per accepted batch: `len: u32 | crc32: u32 | seq: u64 | payload` (little
//! endian), where `payload` is the batch's events as JSON, `seq` the sequence number of its first
//! event, and the checksum covers `seq` and `payload`. A batch is one record, so a crash keeps
//! all of a batch or none of it.
//!
//! Writers: one thread per process takes batches from every request, writes them as one group
//! and fsyncs once (group commit), then answers each; across processes (the server and
//! `feedctl events push`) an exclusive lock on `events/.lock` orders groups. Under that lock a
//! writer first reads what others appended (event ids, for de-duplication) and truncates a torn
//! tail left by a crash: recovery is part of every write, so the log never needs a separate
//! repair step. Readers never lock: they stop before an incomplete record and read it later.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::event::Event;
use crate::error::{Error, Result};

/// What a log holds: events, or changes to the catalog. One record is one batch of entries,
/// numbered from 0 across the log.
pub trait Entry: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// The sender's id for the entry: a second entry with an id the log holds is a duplicate,
    /// counted and not written. `None`: never a duplicate.
    fn dedup_id(&self) -> Option<&str> {
        None
    }

    /// The ids of the entries compaction moved out of the log in `dir` (see
    /// [`super::compact`]): duplicates of them are refused as well.
    fn compacted_ids(_dir: &Path) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

/// The log of a model's events.
pub type EventLog = Log<Event>;

/// A segment is closed once a record would take it past this size.
const SEGMENT_BYTES: u64 = 64 << 20;
/// `len`, `crc32`, `seq`.
const HEADER: usize = 16;

/// One accepted batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T = Event> {
    /// The sequence number of the first entry (entries are numbered from 0 across the log).
    pub seq: u64,
    pub entries: Vec<T>,
}

impl<T> Record<T> {
    /// The entries, each with its number in the log.
    pub fn numbered(self) -> impl Iterator<Item = (u64, T)> {
        let seq = self.seq;
        self.entries
            .into_iter()
            .enumerate()
            .map(move |(k, e)| (seq + k as u64, e))
    }
}

/// A place in the log: a segment and a byte offset in it. Positions order as the log does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub segment: u32,
    pub offset: u64,
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Events written (and fsynced) by this call.
    pub accepted: usize,
    /// Events whose `event_id` the log already held (or that repeated one earlier in the
    /// batch): counted, not written.
    pub duplicates: usize,
    /// The end of the log after the write: a reader that reaches it has seen these events.
    pub end: Position,
}

pub(super) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}.log"))
}

/// The segment numbers present, in order.
pub(super) fn segments(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::storage(format!("listing {}", dir.display()), e)),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".log").and_then(|n| n.parse().ok()) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn encode<T: Entry>(seq: u64, events: &[T]) -> Result<Vec<u8>> {
    let payload =
        serde_json::to_vec(events).map_err(|e| Error::Internal(format!("encoding events: {e}")))?;
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Internal("an event batch over 4 GiB".into()))?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&seq.to_le_bytes());
    crc.update(&payload);
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// The complete records at the start of `buf`, and how many bytes they take. Parsing stops at
/// the first record that is incomplete or fails its checksum.
fn decode<T: Entry>(buf: &[u8]) -> (Vec<Record<T>>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let word = |i: usize| u32::from_le_bytes(buf[at + i..at + i + 4].try_into().unwrap());
        let (len, crc) = (word(0) as usize, word(4));
        let seq = u64::from_le_bytes(buf[at + 8..at + 16].try_into().unwrap());
        let Some(payload) = buf.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&seq.to_le_bytes());
        hasher.update(payload);
        if hasher.finalize() != crc {
            break;
        }
        let Ok(entries) = serde_json::from_slice::<Vec<T>>(payload) else {
            break;
        };
        records.push(Record { seq, entries });
        at += HEADER + len;
    }
    (records, at)
}

/// Whether `rest` (from the first record that does not read to the end of the segment) is what
/// an interrupted append leaves: one record cut short, or one whose declared length reaches the
/// end of the file (its bytes not all on disk), or zeros.
fn is_tail(rest: &[u8]) -> bool {
    if rest.len() < HEADER || rest.iter().all(|&b| b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
    HEADER + len >= rest.len()
}

/// What a read found: the records from a position on, where it stopped, and whether it stopped
/// before a torn tail (bytes after the last complete record of the last segment).
pub struct Read<T = Event> {
    pub records: Vec<Record<T>>,
    pub end: Position,
    pub torn: bool,
}

/// The records of closed segment `n`, all of which must read (a closed segment has no tail).
pub(super) fn read_segment<T: Entry>(dir: &Path, n: u32) -> Result<Vec<Record<T>>> {
    let path = segment_path(dir, n);
    let buf = std::fs::read(&path)
        .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?;
    let (records, used) = decode(&buf);
    if used < buf.len() {
        return Err(Error::Internal(format!(
            "{} is damaged at byte {used}: restore the file from a backup, or move it aside",
            path.display()
        )));
    }
    Ok(records)
}

/// Reads every complete record from `from` on. Never writes: a torn tail is reported, and left
/// for a writer to truncate.
pub fn read_from<T: Entry>(dir: &Path, from: Position) -> Result<Read<T>> {
    let all = segments(dir)?;
    let mut out = Read {
        records: Vec::new(),
        end: from,
        torn: false,
    };
    for (k, &n) in all.iter().enumerate().filter(|(_, &n)| n >= from.segment) {
        let offset = if n == from.segment { from.offset } else { 0 };
        let path = segment_path(dir, n);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            // Compacted since it was listed: its events are in a compacted file.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::storage(format!("opening {}", path.display()), e)),
        };
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?;
        let (records, used) = decode(&buf);
        out.records.extend(records);
        out.end = Position {
            segment: n,
            offset: offset + used as u64,
        };
        if used < buf.len() {
            // A crash mid-write leaves a tail: the last record cut short, or its bytes not all
            // written (zeros, or a checksum that fails on the last record). Bytes that do not
            // read with a whole record's worth after them, or in an older segment (a writer
            // truncates the last one before it writes on), are damage: refuse rather than cut
            // acknowledged records away.
            if k + 1 < all.len() || !is_tail(&buf[used..]) {
                return Err(Error::Internal(format!(
                    "{} is damaged at byte {}: acknowledged events follow a record that does not read; restore the file from a backup, or move it aside to serve without them",
                    path.display(),
                    offset + used as u64
                )));
            }
            out.torn = true;
        }
    }
    Ok(out)
}

/// The log's exclusive lock, across processes: held while writing (and catching up before),
/// and while compacting. Released when the file is dropped.
pub(super) fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::storage(format!("opening {}", path.display()), e))?;
    lock.lock()
        .map_err(|e| Error::storage(format!("locking {}", path.display()), e))?;
    Ok(lock)
}

/// What the writer thread does with a batch's answer.
enum Reply {
    /// A caller waits for it.
    Wait(mpsc::SyncSender<Result<Appended>>),
    /// Run on the writer thread once the batch is written (or failed).
    Then(Box<dyn FnOnce(Result<Appended>) + Send>),
}

impl Reply {
    fn send(self, answer: Result<Appended>) {
        match self {
            Reply::Wait(tx) => {
                let _ = tx.send(answer);
            }
            Reply::Then(f) => f(answer),
        }
    }
}

/// A batch waiting for the writer thread, and where its answer goes.
struct Job<T> {
    events: Vec<T>,
    reply: Reply,
}

/// The writing side of a model's log. Appends from many threads are grouped: one write and one
/// fsync per group.
pub struct Log<T> {
    dir: PathBuf,
    jobs: Mutex<mpsc::Sender<Job<T>>>,
}

impl<T: Entry> Log<T> {
    /// The log in `dir` (created if absent). The writer thread starts here and ends when the log
    /// is dropped.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_sized(dir, SEGMENT_BYTES)
    }

    /// [`Self::open`] closing segments at `segment_bytes` (small ones in tests).
    pub(crate) fn open_sized(dir: &Path, segment_bytes: u64) -> Result<Self> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::storage(format!("creating {}", dir.display()), e))?;
            // The folder's name must survive a crash with the first batch written into it.
            if let Some(parent) = dir.parent() {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::storage(format!("syncing {}", parent.display()), e))?;
            }
        }
        let (tx, rx) = mpsc::channel::<Job<T>>();
        let mut writer = Writer::<T>::new(dir, segment_bytes);
        std::thread::Builder::new()
            .name("event-log".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    group.extend(rx.try_iter());
                    writer.write_group(group);
                }
            })
            .map_err(|e| Error::Internal(format!("starting the event log writer: {e}")))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            jobs: Mutex::new(tx),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Queues `events` for the next group without waiting for the write: for what no one is
    /// answered about (impressions). `then` runs on the writer thread with the outcome (keep it
    /// short: the next group waits for it).
    pub fn submit(&self, events: Vec<T>, then: impl FnOnce(Result<Appended>) + Send + 'static) {
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job {
                events,
                reply: Reply::Then(Box::new(then)),
            });
    }

    /// Writes `events` durably (returns once they are fsynced), skipping those whose
    /// `event_id` the log already holds. Blocks: call it off the async runtime.
    pub fn append(&self, events: Vec<T>) -> Result<Appended> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(Job {
                events,
                reply: Reply::Wait(reply),
            })
            .map_err(|_| Error::Internal("the event log writer stopped".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Internal("the event log writer stopped".into()))?
    }
}

/// The writer thread's state: how far it has read the log, the event ids in it, the next
/// sequence number.
struct Writer<T> {
    dir: PathBuf,
    read: Position,
    ids: HashSet<String>,
    next_seq: u64,
    segment_bytes: u64,
    entries: std::marker::PhantomData<T>,
}

impl<T: Entry> Writer<T> {
    fn new(dir: &Path, segment_bytes: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            read: Position::default(),
            ids: HashSet::new(),
            next_seq: 0,
            segment_bytes,
            entries: std::marker::PhantomData,
        }
    }

    fn write_group(&mut self, group: Vec<Job<T>>) {
        match self.try_write(&group) {
            Ok(answers) => {
                for (job, answer) in group.into_iter().zip(answers) {
                    job.reply.send(Ok(answer));
                }
            }
            Err(e) => {
                // Start over from the log itself: what reached it will be read back.
                let dir = self.dir.clone();
                *self = Writer::new(&dir, self.segment_bytes);
                let message = e.to_string();
                for job in group {
                    job.reply
                        .send(Err(Error::Internal(format!("writing events: {message}"))));
                }
            }
        }
    }

    fn try_write(&mut self, group: &[Job<T>]) -> Result<Vec<Appended>> {
        let lock = lock(&self.dir)?;
        self.catch_up()?;
        let mut bytes = Vec::new();
        let mut counts = Vec::with_capacity(group.len());
        for job in group {
            let mut kept = Vec::with_capacity(job.events.len());
            let mut duplicates = 0;
            for e in &job.events {
                match e.dedup_id() {
                    Some(id) if !self.ids.insert(id.to_string()) => duplicates += 1,
                    _ => kept.push(e.clone()),
                }
            }
            if !kept.is_empty() {
                bytes.extend(encode(self.next_seq, &kept)?);
                self.next_seq += kept.len() as u64;
            }
            counts.push((kept.len(), duplicates));
        }
        if !bytes.is_empty() {
            self.write_synced(&bytes)?;
        }
        drop(lock);
        Ok(counts
            .into_iter()
            .map(|(accepted, duplicates)| Appended {
                accepted,
                duplicates,
                end: self.read,
            })
            .collect())
    }

    /// Reads what other writers appended since this one last looked, and truncates a torn
    /// tail (a crash mid-write): the caller holds the log's lock.
    fn catch_up(&mut self) -> Result<()> {
        // A fresh writer, or one whose next segment was compacted away since it last read:
        // the ids compaction moved out count as well.
        let first = segments(&self.dir)?.first().copied();
        if self.read == Position::default() || first.is_some_and(|f| f > self.read.segment) {
            self.ids.extend(T::compacted_ids(&self.dir)?);
            // Numbering goes on after the compacted events even if no segment is left to say
            // where it stood.
            self.next_seq = self.next_seq.max(super::compact::compacted_end(&self.dir)?);
        }
        let read = read_from::<T>(&self.dir, self.read)?;
        for r in &read.records {
            self.ids.extend(
                r.entries
                    .iter()
                    .filter_map(|e| e.dedup_id().map(str::to_string)),
            );
            self.next_seq = r.seq + r.entries.len() as u64;
        }
        self.read = read.end;
        if read.torn {
            let path = segment_path(&self.dir, read.end.segment);
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| Error::storage(format!("opening {}", path.display()), e))?;
            f.set_len(read.end.offset)
                .and_then(|_| f.sync_all())
                .map_err(|e| Error::storage(format!("truncating {}", path.display()), e))?;
            tracing::warn!(
                "{}: dropped a torn record at byte {} (a write that was never acknowledged)",
                path.display(),
                read.end.offset
            );
        }
        Ok(())
    }

    /// Appends `bytes` to the last segment (or a new one when it is full) and fsyncs.
    fn write_synced(&mut self, bytes: &[u8]) -> Result<()> {
        let mut segment = self.read.segment.max(1);
        let mut offset = if self.read.segment == 0 {
            0
        } else {
            self.read.offset
        };
        let new_segment = self.read.segment == 0
            || (offset > 0 && offset + bytes.len() as u64 > self.segment_bytes);
        if new_segment && self.read.segment != 0 {
            segment += 1;
            offset = 0;
        }
        let path = segment_path(&self.dir, segment);
        let io = |e| Error::storage(format!("writing {}", path.display()), e);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if let Err(e) = f.write_all(bytes).and_then(|_| f.sync_data()) {
            // Nothing of a group that failed may count later: cut the file back to where the
            // group began (a failed fsync may have lost what the write cached).
            f.set_len(offset).and_then(|_| f.sync_all()).map_err(|e| {
                Error::Internal(format!(
                    "{}: a failed write could not be undone ({e}); the log needs attention",
                    path.display()
                ))
            })?;
            return Err(io(e));
        }
        if new_segment {
            // The new file's name must survive a crash as well as its bytes.
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::storage(format!("syncing {}", self.dir.display()), e))?;
        }
        self.read = Position {
            segment,
            offset: offset + bytes.len() as u64,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: &str, item: &str, id: Option<&str>) -> Event {
        Event {
            event_id: id.map(str::to_string),
            ..crate::live::event::test_event(user, item, "click")
        }
    }

    fn all_events(dir: &Path) -> Vec<Event> {
        read_from::<Event>(dir, Position::default())
            .unwrap()
            .records
            .into_iter()
            .flat_map(|r| r.entries)
            .collect()
    }

    #[test]
    fn appends_read_back_in_order_and_duplicates_are_counted_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        let a = log
            .append(vec![event("u1", "i1", Some("e1")), event("u1", "i2", None)])
            .unwrap();
        assert_eq!((a.accepted, a.duplicates), (2, 0));
        let b = log
            .append(vec![
                event("u2", "i3", Some("e1")),
                event("u2", "i4", Some("e2")),
                event("u2", "i4", Some("e2")),
            ])
            .unwrap();
        assert_eq!((b.accepted, b.duplicates), (1, 2));
        let items: Vec<String> = all_events(dir.path())
            .into_iter()
            .map(|e| e.item_id)
            .collect();
        assert_eq!(items, ["i1", "i2", "i4"]);
        let read = read_from::<Event>(dir.path(), Position::default()).unwrap();
        assert_eq!(
            read.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
            [0, 2]
        );
        assert_eq!(read.end, b.end);
        // A second process's writer (a new log on the same folder) knows the ids already there.
        drop(log);
        let again = EventLog::open(dir.path()).unwrap();
        let c = again.append(vec![event("u3", "i5", Some("e2"))]).unwrap();
        assert_eq!((c.accepted, c.duplicates), (0, 1));
    }

    #[test]
    fn a_torn_tail_is_dropped_and_every_acknowledged_record_kept() {
        let dir = tempfile::tempdir().unwrap();
        let log = EventLog::open(dir.path()).unwrap();
        log.append(vec![event("u1", "i1", Some("e1"))]).unwrap();
        let end = log.append(vec![event("u1", "i2", Some("e2"))]).unwrap().end;
        drop(log);
        // A crash mid-write: half a record after the acknowledged ones, and one whose checksum
        // does not match.
        let path = segment_path(dir.path(), end.segment);
        let record = encode(2, &[event("u9", "i9", Some("e9"))]).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&record[..record.len() / 2]).unwrap();
        drop(f);
        let read = read_from::<Event>(dir.path(), Position::default()).unwrap();
        assert!(read.torn);
        assert_eq!(read.end, end);
        assert_eq!(all_events(dir.path()).len(), 2);
        // The next writer truncates the tail and appends after the acknowledged records.
        let log = EventLog::open(dir.path()).unwrap();
        let d = log.append(vec![event("u1", "i3", Some("e3"))]).unwrap();
        assert_eq!(d.accepted, 1);
        let ids: Vec<String> = all_events(dir.path())
            .into_iter()
            .filter_map(|e| e.event_id)
            .collect();
        assert_eq!(ids, ["e1", "e2", "e3"]);
        assert!(
            !read_from::<Event>(dir.path(), Position::default())
                .unwrap()
                .torn
        );
        // A flipped byte fails the checksum: the record and what follows are a tail too.
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let read = read_from::<Event>(dir.path(), Position::default()).unwrap();
        assert!(read.torn);
        assert_eq!(read.records.len(), 2);
        // The same in the first record, with acknowledged records after it, is damage: refused,
        // never truncated away.
        bytes[last] ^= 0xff;
        bytes[HEADER + 2] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let e = read_from::<Event>(dir.path(), Position::default())
            .err()
            .unwrap();
        assert!(e.to_string().contains("damaged at byte 0"), "{e}");
        let log = EventLog::open(dir.path()).unwrap();
        assert!(log.append(vec![event("u1", "i4", None)]).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
    }

    #[test]
    fn concurrent_appends_are_all_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(EventLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for k in 0..50 {
                        let id = format!("t{t}-{k}");
                        log.append(vec![event("u", &id, Some(&id))]).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let events = all_events(dir.path());
        assert_eq!(events.len(), 400);
        let ids: HashSet<_> = events.iter().filter_map(|e| e.event_id.clone()).collect();
        assert_eq!(ids.len(), 400);
    }
}
