//! Write-ahead log: numbered segment files of framed records, with group
//! commit for concurrent writers and torn-tail recovery.
//!
//! The engine (`super::engine`) appends every write batch and catalog
//! change here before it applies it, and deletes the segments that a head
//! flush has made redundant. `super::recovery` replays the records that
//! are newer than the last flush at start-up.
//!
//! # Files
//!
//! `wal/<first-seq, 20 digits>.wal`: a 16-byte header (8-byte magic, the
//! first sequence number as u64 LE), then records. Each record is a
//! 16-byte frame header (body length u32 LE, CRC32C u32 LE, sequence
//! number u64 LE) and the body. The CRC covers the sequence number bytes
//! and the body. Sequence numbers increase by one across segments.
//!
//! # Group commit
//!
//! Appends copy the framed record into one shared in-memory buffer under
//! the state lock. [`Wal::commit`] then waits until the record is written
//! (or written and fsynced): the first waiter that finds no write in
//! progress becomes the leader, takes the whole buffer, writes it and, if
//! asked, fsyncs, all without the lock. Records appended meanwhile are
//! written by the next leader, so concurrent batches share one fsync.
//! The buffer is limited to `max_buffer_bytes`. An append that finds it
//! full writes it out itself or waits for the write in progress.
//!
//! After a failed write or fsync the log stops: every later append and
//! commit returns [`WalError::Failed`], because after a failed fsync the
//! kernel may have dropped dirty pages and a retry could report success
//! for lost data.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::fsutil::sync_dir;

/// Sequence number of a WAL record. The first record is 1; 0 means "no
/// record".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct WalSeq(pub u64);

impl WalSeq {
    pub fn next(self) -> WalSeq {
        WalSeq(self.0 + 1)
    }
}

impl fmt::Display for WalSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

const SEGMENT_MAGIC: [u8; 8] = *b"TMWAL\x00\x00\x01";
pub const SEGMENT_HEADER_BYTES: u64 = 16;
pub const RECORD_HEADER_BYTES: usize = 16;
/// Largest record body accepted; a larger length in a frame header is
/// treated as corruption.
pub const MAX_RECORD_BODY_BYTES: usize = 256 << 20;

/// Errors of the write-ahead log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal i/o failed on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("wal stopped after an earlier failure and accepts no writes until restart: {reason}")]
    Failed { reason: String },

    #[error("wal record of {len} bytes is over the limit of {MAX_RECORD_BODY_BYTES} bytes")]
    RecordTooLarge { len: usize },

    #[error("wal is closed")]
    Closed,

    #[error("wal record {seq} in {path} cannot be applied: {reason}")]
    Replay {
        seq: WalSeq,
        path: PathBuf,
        reason: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Condition that [`Wal::commit`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitWait {
    /// The record has been handed to the kernel with `write`.
    Written,
    /// The record has been written and fsynced.
    Synced,
}

/// Sizing of the log.
#[derive(Debug, Clone)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it reaches this size.
    pub segment_bytes: u64,
    /// Largest amount of appended but unwritten record bytes.
    pub max_buffer_bytes: usize,
}

/// A segment that is no longer appended to.
#[derive(Debug, Clone)]
pub struct ClosedSegment {
    pub first_seq: WalSeq,
    pub path: PathBuf,
    pub bytes: u64,
}

struct ActiveSegment {
    first_seq: WalSeq,
    path: PathBuf,
    file: Arc<File>,
    bytes: u64,
}

struct WalState {
    /// Framed records appended but not yet written, in sequence order.
    buffer: Vec<u8>,
    /// An empty vector whose capacity the next write round reuses.
    spare: Vec<u8>,
    last_seq: WalSeq,
    written_seq: WalSeq,
    synced_seq: WalSeq,
    /// True while a leader writes or fsyncs without holding the lock.
    io_busy: bool,
    active: ActiveSegment,
    closed: Vec<ClosedSegment>,
    failure: Option<String>,
    shut_down: bool,
}

/// The write-ahead log of one data directory.
pub struct Wal {
    dir: PathBuf,
    options: WalOptions,
    /// Guards the buffer, the sequence counters and the segment list.
    state: Mutex<WalState>,
    /// Signalled when a write round ends or the log fails.
    changed: Condvar,
}

pub fn segment_path(dir: &Path, first_seq: WalSeq) -> PathBuf {
    dir.join(format!("{:020}.wal", first_seq.0))
}

fn create_segment(dir: &Path, first_seq: WalSeq) -> Result<ActiveSegment, WalError> {
    let path = segment_path(dir, first_seq);
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_error(&path))?;
    let mut header = [0u8; SEGMENT_HEADER_BYTES as usize];
    header[..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..].copy_from_slice(&first_seq.0.to_le_bytes());
    file.write_all(&header).map_err(io_error(&path))?;
    file.sync_all().map_err(io_error(&path))?;
    sync_dir(dir).map_err(io_error(dir))?;
    Ok(ActiveSegment {
        first_seq,
        path,
        file: Arc::new(file),
        bytes: SEGMENT_HEADER_BYTES,
    })
}

impl Wal {
    /// Starts appending in a new segment whose first record will be
    /// `next_seq`. `existing` lists the segments left by recovery, oldest
    /// first.
    pub fn start(
        dir: &Path,
        options: WalOptions,
        next_seq: WalSeq,
        existing: Vec<ClosedSegment>,
    ) -> Result<Wal, WalError> {
        let active = create_segment(dir, next_seq)?;
        let last = WalSeq(next_seq.0 - 1);
        Ok(Wal {
            dir: dir.to_owned(),
            options,
            state: Mutex::new(WalState {
                buffer: Vec::new(),
                spare: Vec::new(),
                last_seq: last,
                written_seq: last,
                synced_seq: last,
                io_busy: false,
                active,
                closed: existing,
                failure: None,
                shut_down: false,
            }),
            changed: Condvar::new(),
        })
    }

    fn check_usable(state: &WalState) -> Result<(), WalError> {
        if let Some(reason) = &state.failure {
            return Err(WalError::Failed {
                reason: reason.clone(),
            });
        }
        if state.shut_down {
            return Err(WalError::Closed);
        }
        Ok(())
    }

    /// Frames `body` into the buffer and returns its sequence number. The
    /// record is not on disk until [`Wal::commit`] returns for it.
    pub fn append(&self, body: &[u8]) -> Result<WalSeq, WalError> {
        if body.len() > MAX_RECORD_BODY_BYTES {
            return Err(WalError::RecordTooLarge { len: body.len() });
        }
        let mut state = self.state.lock();
        loop {
            Self::check_usable(&state)?;
            if state.buffer.len() < self.options.max_buffer_bytes {
                break;
            }
            if state.io_busy {
                self.changed.wait(&mut state);
            } else {
                self.write_round(&mut state, false);
            }
        }

        let seq = state.last_seq.next();
        let seq_bytes = seq.0.to_le_bytes();
        let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), body);
        let buffer = &mut state.buffer;
        buffer.reserve(RECORD_HEADER_BYTES + body.len());
        buffer.extend_from_slice(&(body.len() as u32).to_le_bytes());
        buffer.extend_from_slice(&crc.to_le_bytes());
        buffer.extend_from_slice(&seq_bytes);
        buffer.extend_from_slice(body);
        state.last_seq = seq;
        Ok(seq)
    }

    /// Waits until the record `seq` is written or synced, leading a write
    /// round when no other thread is in one.
    pub fn commit(&self, seq: WalSeq, wait: CommitWait) -> Result<(), WalError> {
        let mut state = self.state.lock();
        loop {
            let done = match wait {
                CommitWait::Written => state.written_seq >= seq,
                CommitWait::Synced => state.synced_seq >= seq,
            };
            if done {
                return Ok(());
            }
            if let Some(reason) = &state.failure {
                return Err(WalError::Failed {
                    reason: reason.clone(),
                });
            }
            if state.io_busy {
                self.changed.wait(&mut state);
            } else {
                self.write_round(&mut state, wait == CommitWait::Synced);
            }
        }
    }

    /// Writes and fsyncs every appended record.
    pub fn sync(&self) -> Result<(), WalError> {
        let mut state = self.state.lock();
        let target = state.last_seq;
        loop {
            if state.synced_seq >= target {
                return Ok(());
            }
            if let Some(reason) = &state.failure {
                return Err(WalError::Failed {
                    reason: reason.clone(),
                });
            }
            if state.io_busy {
                self.changed.wait(&mut state);
            } else {
                self.write_round(&mut state, true);
            }
        }
    }

    /// Writes and fsyncs every appended record and, if the active segment
    /// contains records, starts a new one, so that every record up to the
    /// returned sequence number sits in a closed segment. The caller must
    /// keep other threads from appending meanwhile.
    pub fn rotate(&self) -> Result<WalSeq, WalError> {
        self.sync()?;
        let mut state = self.state.lock();
        while state.io_busy {
            self.changed.wait(&mut state);
        }
        Self::check_usable(&state)?;
        let last = state.last_seq;
        if state.active.bytes > SEGMENT_HEADER_BYTES {
            state.io_busy = true;
            let result = self.start_next_segment(&mut state);
            state.io_busy = false;
            self.changed.notify_all();
            result?;
        }
        Ok(last)
    }

    /// Deletes the closed segments whose records all have sequence numbers
    /// up to `seq`. Returns the bytes freed.
    pub fn remove_through(&self, seq: WalSeq) -> Result<u64, WalError> {
        let removable: Vec<ClosedSegment> = {
            let mut state = self.state.lock();
            // A segment ends where its successor starts.
            let closed = &state.closed;
            let count = (0..closed.len())
                .take_while(|&i| {
                    let successor = closed
                        .get(i + 1)
                        .map_or(state.active.first_seq, |s| s.first_seq);
                    successor.0 <= seq.0 + 1
                })
                .count();
            state.closed.drain(..count).collect()
        };
        let mut freed = 0;
        for segment in &removable {
            fs::remove_file(&segment.path).map_err(io_error(&segment.path))?;
            freed += segment.bytes;
        }
        if !removable.is_empty() {
            sync_dir(&self.dir).map_err(io_error(&self.dir))?;
        }
        Ok(freed)
    }

    pub fn last_seq(&self) -> WalSeq {
        self.state.lock().last_seq
    }

    /// Bytes of all segment files, including unwritten buffered records.
    pub fn total_bytes(&self) -> u64 {
        let state = self.state.lock();
        state.closed.iter().map(|s| s.bytes).sum::<u64>()
            + state.active.bytes
            + state.buffer.len() as u64
    }

    /// Syncs every appended record and refuses further appends.
    pub fn close(&self) -> Result<(), WalError> {
        let result = self.sync();
        self.state.lock().shut_down = true;
        result
    }

    /// Takes the buffer, writes it (and fsyncs when `sync`) without the
    /// lock, then records the outcome. The caller has checked that no
    /// other round is in progress.
    fn write_round(&self, state: &mut MutexGuard<'_, WalState>, sync: bool) {
        debug_assert!(!state.io_busy);
        state.io_busy = true;
        let spare = std::mem::take(&mut state.spare);
        let mut data = std::mem::replace(&mut state.buffer, spare);
        let upto = state.last_seq;
        let file = state.active.file.clone();
        let path = state.active.path.clone();

        let result = MutexGuard::unlocked(state, || -> io::Result<()> {
            if !data.is_empty() {
                (&*file).write_all(&data)?;
            }
            if sync {
                file.sync_data()?;
            }
            Ok(())
        });

        match result {
            Ok(()) => {
                state.written_seq = upto;
                if sync {
                    state.synced_seq = upto;
                }
                state.active.bytes += data.len() as u64;
                data.clear();
                state.spare = data;
                if state.active.bytes >= self.options.segment_bytes {
                    // A failure here is stored in `state.failure`.
                    let _ = self.start_next_segment(state);
                }
            }
            Err(source) => {
                tracing::error!(
                    path = %path.display(),
                    last_seq = %upto,
                    error = %source,
                    "wal write failed; the engine rejects writes until restart"
                );
                state.failure = Some(format!("writing {} failed: {source}", path.display()));
            }
        }
        state.io_busy = false;
        self.changed.notify_all();
    }

    /// Fsyncs the active segment and opens a new one that starts after the
    /// last written record. The caller has set `io_busy`.
    fn start_next_segment(&self, state: &mut MutexGuard<'_, WalState>) -> Result<(), WalError> {
        let first_seq = state.written_seq.next();
        let old_file = state.active.file.clone();
        let old_path = state.active.path.clone();
        let result = MutexGuard::unlocked(state, || {
            old_file.sync_data().map_err(io_error(&old_path))?;
            create_segment(&self.dir, first_seq)
        });
        match result {
            Ok(segment) => {
                if state.synced_seq < state.written_seq {
                    state.synced_seq = state.written_seq;
                }
                let old = std::mem::replace(&mut state.active, segment);
                state.closed.push(ClosedSegment {
                    first_seq: old.first_seq,
                    path: old.path,
                    bytes: old.bytes,
                });
                Ok(())
            }
            Err(err) => {
                tracing::error!(path = %old_path.display(), error = %err, "wal segment rotation failed");
                state.failure = Some(err.to_string());
                Err(err)
            }
        }
    }
}

/// Segments found by [`recover`] and the sequence number the log
/// continues with.
#[derive(Debug)]
pub struct RecoveredWal {
    pub next_seq: WalSeq,
    pub segments: Vec<ClosedSegment>,
    /// Records passed to the replay callback.
    pub replayed: u64,
}

/// Offset and reason of an early end of a segment.
struct DamagedAt {
    offset: u64,
    reason: String,
    /// True when the bad record runs to the end of the file, as a write
    /// cut short by a crash does, so no later record can be lost.
    torn_tail: bool,
}

/// Reads every segment in `dir`, oldest first, and calls `apply` for each
/// record newer than `after`. A segment that starts after a gap in
/// sequence numbers is replayed, and one that repeats earlier sequence
/// numbers is renamed to a unique `*.damaged` name. A torn or corrupt
/// record ends replay: it is logged with its file and offset, the segment
/// is truncated there and any later segments are renamed. When bytes
/// follow the bad record, the whole segment is first copied to a unique
/// `*.damaged` file. Segments with no records are deleted.
pub fn recover(
    dir: &Path,
    after: WalSeq,
    mut apply: impl FnMut(WalSeq, &[u8]) -> Result<(), String>,
) -> Result<RecoveredWal, WalError> {
    let mut found: Vec<(WalSeq, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = name.strip_suffix(".wal") else {
            continue;
        };
        match stem.parse::<u64>() {
            Ok(first) => found.push((WalSeq(first), path)),
            Err(_) => {
                tracing::warn!(path = %path.display(), "ignoring a file in the wal directory with an unexpected name")
            }
        }
    }
    found.sort();

    let mut kept: Vec<ClosedSegment> = Vec::new();
    let mut last_seen: Option<WalSeq> = None;
    let mut replayed = 0u64;
    let mut stop_index = None;
    for (index, (first_seq, path)) in found.iter().enumerate() {
        let data = fs::read(path).map_err(io_error(path))?;
        let mut records = 0u64;
        let mut overlaps = false;
        let damage = read_segment(&data, *first_seq, &mut |seq, body| {
            // `read_segment` checks that the records of one segment are
            // consecutive, so only its first record can follow a gap.
            let contiguous = match last_seen {
                Some(last) => seq == last.next(),
                None => seq.0 <= after.0 + 1,
            };
            if !contiguous {
                let expected = last_seen.map_or(after.next(), WalSeq::next);
                if seq < expected {
                    overlaps = true;
                    return Err(ReadStop::Damaged(format!(
                        "record {seq} repeats an earlier sequence number; expected {expected}"
                    )));
                }
                tracing::error!(
                    path = %path.display(),
                    expected_seq = %expected,
                    found_seq = %seq,
                    "wal segment starts after a gap in sequence numbers; the records \
                     in the gap are missing and this segment's records are replayed"
                );
            }
            last_seen = Some(seq);
            records += 1;
            if seq > after {
                apply(seq, body).map_err(ReadStop::Apply)?;
                replayed += 1;
            }
            Ok(())
        });
        let damage = match damage {
            Ok(damage) => damage,
            Err(reason) => {
                return Err(WalError::Replay {
                    seq: last_seen.unwrap_or_default(),
                    path: path.clone(),
                    reason,
                });
            }
        };

        if overlaps {
            let damaged = unique_damaged_path(path);
            tracing::error!(
                path = %path.display(),
                renamed_to = %damaged.display(),
                first_seq = %first_seq,
                last_replayed_seq = %last_seen.unwrap_or_default(),
                "wal segment repeats sequence numbers of an earlier segment; renamed \
                 and not replayed"
            );
            fs::rename(path, &damaged).map_err(io_error(path))?;
            continue;
        }
        if let Some(DamagedAt {
            offset,
            reason,
            torn_tail,
        }) = damage
        {
            let bytes_cut = data.len() as u64 - offset;
            let last_good_seq = last_seen.unwrap_or_default();
            if records == 0 && offset > 0 && torn_tail {
                // Only a header and a torn first record: nothing in it was
                // ever acknowledged.
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    reason = %reason,
                    "wal segment ends in a torn first record; deleted the segment"
                );
                fs::remove_file(path).map_err(io_error(path))?;
            } else if records == 0 {
                let damaged = unique_damaged_path(path);
                tracing::error!(
                    path = %path.display(),
                    offset,
                    reason = %reason,
                    renamed_to = %damaged.display(),
                    "wal segment is damaged before its first valid record; renamed and not replayed"
                );
                fs::rename(path, &damaged).map_err(io_error(path))?;
            } else {
                if torn_tail {
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        bytes_cut,
                        reason = %reason,
                        last_good_seq = %last_good_seq,
                        "wal segment ends in a torn record; truncated it at the last good record"
                    );
                } else {
                    let copy = write_damaged_copy(path, &data)?;
                    tracing::error!(
                        path = %path.display(),
                        offset,
                        bytes_cut,
                        reason = %reason,
                        last_good_seq = %last_good_seq,
                        copy = %copy.display(),
                        "wal record is corrupt and bytes follow it; copied the segment, then \
                         truncated it at the last good record"
                    );
                }
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_error(path))?;
                file.set_len(offset).map_err(io_error(path))?;
                file.sync_all().map_err(io_error(path))?;
                kept.push(ClosedSegment {
                    first_seq: *first_seq,
                    path: path.clone(),
                    bytes: offset,
                });
            }
            stop_index = Some(index);
            break;
        }
        if records == 0 {
            fs::remove_file(path).map_err(io_error(path))?;
            continue;
        }
        kept.push(ClosedSegment {
            first_seq: *first_seq,
            path: path.clone(),
            bytes: data.len() as u64,
        });
    }

    if let Some(index) = stop_index {
        for (_, path) in &found[index + 1..] {
            let damaged = unique_damaged_path(path);
            tracing::error!(
                path = %path.display(),
                renamed_to = %damaged.display(),
                "wal segment follows a damaged record; renamed and not replayed"
            );
            fs::rename(path, &damaged).map_err(io_error(path))?;
        }
    }
    sync_dir(dir).map_err(io_error(dir))?;

    let last = last_seen.unwrap_or_default().max(after);
    Ok(RecoveredWal {
        next_seq: last.next(),
        segments: kept,
        replayed,
    })
}

/// Writes `data` to a new file at [`unique_damaged_path`] and syncs it
/// and the directory. Returns the path of the copy.
fn write_damaged_copy(path: &Path, data: &[u8]) -> Result<PathBuf, WalError> {
    let copy = unique_damaged_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&copy)
        .map_err(io_error(&copy))?;
    file.write_all(data).map_err(io_error(&copy))?;
    file.sync_all().map_err(io_error(&copy))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir).map_err(io_error(dir))?;
    }
    Ok(copy)
}

/// Returns `<path>.damaged`, or `<path>.<n>.damaged` with the smallest
/// `n` that names no existing file, so a quarantined segment never
/// replaces an earlier one.
fn unique_damaged_path(path: &Path) -> PathBuf {
    let with_suffix = |suffix: String| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let mut candidate = with_suffix(".damaged".to_owned());
    let mut counter = 1u64;
    while candidate.symlink_metadata().is_ok() {
        candidate = with_suffix(format!(".{counter}.damaged"));
        counter += 1;
    }
    candidate
}

type RecordVisitor<'a> = dyn FnMut(WalSeq, &[u8]) -> Result<(), ReadStop> + 'a;

enum ReadStop {
    Damaged(String),
    Apply(String),
}

/// Walks the records of one segment. Returns where and why it stopped
/// early, or `Ok(None)` at a clean end; `Err` carries a callback failure.
fn read_segment(
    data: &[u8],
    first_seq: WalSeq,
    visit: &mut RecordVisitor<'_>,
) -> Result<Option<DamagedAt>, String> {
    let damaged = |offset: usize, reason: String, torn_tail: bool| {
        Ok(Some(DamagedAt {
            offset: offset as u64,
            reason,
            torn_tail,
        }))
    };
    let header = SEGMENT_HEADER_BYTES as usize;
    if data.len() < header {
        return damaged(
            0,
            format!("segment header is torn: {} of {header} bytes", data.len()),
            true,
        );
    }
    if data[..8] != SEGMENT_MAGIC {
        return damaged(
            0,
            "segment header has the wrong magic bytes".to_owned(),
            false,
        );
    }
    let header_seq = u64::from_le_bytes(data[8..16].try_into().expect("8 bytes"));
    if header_seq != first_seq.0 {
        return damaged(
            0,
            format!("segment header names first record {header_seq}, file name {first_seq}"),
            false,
        );
    }

    let mut offset = header;
    let mut expected = first_seq;
    while offset < data.len() {
        let rest = &data[offset..];
        if rest.len() < RECORD_HEADER_BYTES {
            return damaged(
                offset,
                format!(
                    "record header is torn: {} of {RECORD_HEADER_BYTES} bytes",
                    rest.len()
                ),
                true,
            );
        }
        let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        let seq_bytes = &rest[8..16];
        if len > MAX_RECORD_BODY_BYTES {
            // The record's end is unknown, so later records may follow.
            return damaged(
                offset,
                format!("record length {len} is over the limit"),
                false,
            );
        }
        if rest.len() < RECORD_HEADER_BYTES + len {
            return damaged(
                offset,
                format!(
                    "record body is torn: {} of {len} bytes",
                    rest.len() - RECORD_HEADER_BYTES
                ),
                true,
            );
        }
        let body = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len];
        let is_last = rest.len() == RECORD_HEADER_BYTES + len;
        let actual = crc32c::crc32c_append(crc32c::crc32c(seq_bytes), body);
        if actual != crc {
            return damaged(
                offset,
                format!("crc mismatch: stored {crc:#010x}, computed {actual:#010x}"),
                is_last,
            );
        }
        let seq = WalSeq(u64::from_le_bytes(seq_bytes.try_into().expect("8 bytes")));
        if seq != expected {
            return damaged(
                offset,
                format!("record {seq} in a segment where {expected} comes next"),
                is_last,
            );
        }
        match visit(seq, body) {
            Ok(()) => {}
            Err(ReadStop::Damaged(reason)) => return damaged(offset, reason, is_last),
            Err(ReadStop::Apply(reason)) => return Err(reason),
        }
        expected = seq.next();
        offset += RECORD_HEADER_BYTES + len;
    }
    Ok(None)
}
