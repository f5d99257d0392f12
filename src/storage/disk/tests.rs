//! Engine-level tests on real files in temporary directories. A "crash"
//! stops the engine without flushing or syncing anything beyond what its
//! durability mode already did, then the directory is opened again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::maintenance::FlushStop;
use super::*;
use crate::model::{Column, DataType, SeriesWrite, TagSet, Value, WriteBatch};
use crate::storage::PointSummary;
use crate::storage::memory::MemoryStorage;

/// Returns a configuration whose background thread never flushes or
/// compacts on its own, so each test decides when blocks appear.
fn manual_config(dir: &Path) -> DiskConfig {
    let mut config = DiskConfig::new(dir);
    config.head_flush_points = u64::MAX;
    config.head_flush_age = Duration::from_secs(3600);
    config.maintenance_interval = Duration::from_secs(3600);
    config.compaction_min_blocks = usize::MAX;
    config
}

fn open(dir: &Path) -> DiskStorage {
    DiskStorage::open(manual_config(dir)).expect("open data directory")
}

fn tags(pairs: &[(&str, &str)]) -> TagSet {
    TagSet::from_pairs(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn entry(metric: &str, tag_set: TagSet, times: Vec<i64>, values: Column) -> SeriesWrite {
    SeriesWrite {
        metric: metric.to_owned(),
        tags: tag_set,
        first_index: 0,
        times_ns: times,
        values,
    }
}

fn floats(metric: &str, times: Vec<i64>, values: Vec<f64>) -> WriteBatch {
    WriteBatch {
        series: vec![entry(
            metric,
            tags(&[("host", "a")]),
            times,
            Column::F64(values),
        )],
    }
}

/// Every point of every series, keyed by metric and tags.
type Dump = BTreeMap<(String, String), Vec<(i64, Value)>>;

fn dump(storage: &dyn Storage) -> Dump {
    let mut out = Dump::new();
    for metric in storage.list_metrics() {
        for series in storage.series(&metric.name) {
            let mut points = Vec::new();
            storage
                .scan(
                    &metric.name,
                    series.id,
                    TimeRange::ALL,
                    &mut |times, values| {
                        for (i, &t) in times.iter().enumerate() {
                            points.push((t, values.get(i).to_owned()));
                        }
                    },
                )
                .unwrap();
            let previous = out.insert((metric.name.clone(), series.tags.to_string()), points);
            assert!(
                previous.is_none(),
                "two series of {} share tags {}",
                metric.name,
                series.tags
            );
        }
    }
    out
}

fn point_total(dump: &Dump) -> usize {
    dump.values().map(Vec::len).sum()
}

/// Applies the same batches to a disk engine and the memory engine.
struct Twin {
    disk: DiskStorage,
    memory: MemoryStorage,
}

impl Twin {
    fn write(&self, batch: WriteBatch) {
        let disk = self.disk.write(&batch).unwrap();
        let memory = self.memory.write(&batch).unwrap();
        assert_eq!(disk.accepted, memory.accepted);
        assert_eq!(disk.rejected_entries, memory.rejected_entries);
    }

    fn check(&self, context: &str) {
        assert_eq!(dump(&self.disk), dump(&self.memory), "{context}");
    }
}

fn wal_segments(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    paths.sort();
    paths
}

fn block_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("blocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

fn file_bytes(paths: &[PathBuf]) -> u64 {
    paths.iter().map(|p| fs::metadata(p).unwrap().len()).sum()
}

/// Start offsets and lengths of the records of one segment file.
fn record_spans(segment: &Path) -> Vec<(usize, usize)> {
    let data = fs::read(segment).unwrap();
    let mut spans = Vec::new();
    let mut offset = wal::SEGMENT_HEADER_BYTES as usize;
    while offset < data.len() {
        let len = u32::from_le_bytes(data[offset..offset + 4].try_into().unwrap()) as usize;
        spans.push((offset, wal::RECORD_HEADER_BYTES + len));
        offset += wal::RECORD_HEADER_BYTES + len;
    }
    spans
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn every_value_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let twin = Twin {
        disk: open(dir.path()),
        memory: MemoryStorage::new(),
    };
    let host = tags(&[("host", "a"), ("dc", "eu")]);
    twin.write(WriteBatch {
        series: vec![
            entry(
                "f",
                host.clone(),
                vec![-20, 10, 30],
                Column::F64(vec![f64::NEG_INFINITY, 0.25, f64::INFINITY]),
            ),
            entry(
                "i",
                host.clone(),
                vec![1, 2, 3],
                Column::I64(vec![i64::MIN, 0, i64::MAX]),
            ),
            entry(
                "b",
                host.clone(),
                vec![5, 6, 7],
                Column::Bool(vec![true, false, true]),
            ),
            entry(
                "s",
                host.clone(),
                vec![8, 9],
                Column::Str(vec![Arc::from("ok"), Arc::from("")]),
            ),
            entry("f", TagSet::default(), vec![1], Column::I64(vec![7])),
        ],
    });
    twin.check("head only");
    twin.disk.flush().unwrap();
    twin.check("after flush");
    twin.disk.close().unwrap();
    drop(twin.disk);

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), dump(&twin.memory), "after restart");
    assert_eq!(reopened.metric("s").unwrap().data_type, DataType::String);
    assert_eq!(reopened.metric("i").unwrap().data_type, DataType::Integer);
    assert_eq!(reopened.metric("f").unwrap().point_count, 4);
    assert_eq!(reopened.metric("f").unwrap().series_count, 2);
}

#[test]
fn last_write_wins_across_head_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.compaction_min_blocks = 2;
    let twin = Twin {
        disk: DiskStorage::open(config).unwrap(),
        memory: MemoryStorage::new(),
    };
    twin.write(floats(
        "m",
        (1..=10).collect(),
        (1..=10).map(f64::from).collect(),
    ));
    twin.disk.flush().unwrap();
    twin.write(floats("m", vec![5, 0, 20, 5], vec![50.0, 0.5, 200.0, 55.0]));
    twin.check("block overwritten by head");
    twin.disk.flush().unwrap();
    twin.check("two overlapping blocks");
    twin.write(floats("m", vec![5, 10], vec![500.0, 1000.0]));
    twin.disk.flush().unwrap();
    twin.write(floats("m", vec![3], vec![-3.0]));
    twin.check("three blocks and a head");
    assert_eq!(twin.disk.compact().unwrap(), 1);
    twin.check("after compaction");
    assert_eq!(twin.disk.metric("m").unwrap().point_count, 13);
    twin.disk.close().unwrap();
    drop(twin.disk);

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), dump(&twin.memory), "after restart");
    assert_eq!(point_total(&dump(&reopened)), 12);
}

#[test]
fn restarts_yield_identical_data() {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryStorage::new();
    let mut expected = Dump::new();
    for round in 0..6i64 {
        let storage = open(dir.path());
        assert_eq!(dump(&storage), expected, "round {round} after reopening");
        let batch = floats(
            "m",
            vec![round * 10, round * 10 + 1, 3],
            vec![round as f64; 3],
        );
        storage.write(&batch).unwrap();
        memory.write(&batch).unwrap();
        expected = dump(&memory);
        if round % 2 == 0 {
            storage.flush().unwrap();
        }
        if round % 3 == 0 {
            storage.close().unwrap();
        } else {
            storage.crash();
        }
    }
    let storage = open(dir.path());
    assert_eq!(dump(&storage), expected);
    storage.crash();
    let storage = open(dir.path());
    assert_eq!(dump(&storage), expected, "reopening twice without writes");
}

/// Writes `count` batches of one point each, every one its own record,
/// and returns the dumps after each batch.
fn write_numbered_batches(storage: &DiskStorage, count: i64) -> Vec<Dump> {
    let memory = MemoryStorage::new();
    let mut dumps = vec![Dump::new()];
    for i in 0..count {
        let batch = floats("m", vec![i * 1_000], vec![i as f64 * 1.5]);
        storage.write(&batch).unwrap();
        memory.write(&batch).unwrap();
        dumps.push(dump(&memory));
    }
    dumps
}

#[test]
fn torn_last_record_recovers_at_every_offset() {
    let original = tempfile::tempdir().unwrap();
    let storage = open(original.path());
    let dumps = write_numbered_batches(&storage, 4);
    storage.crash();

    let segment = wal_segments(original.path()).pop().unwrap();
    let spans = record_spans(&segment);
    assert_eq!(spans.len(), 4);
    let (start, len) = spans[3];
    let segment_name = segment.file_name().unwrap().to_owned();

    for cut in start..start + len {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let torn = copy.path().join("wal").join(&segment_name);
        let file = fs::OpenOptions::new().write(true).open(&torn).unwrap();
        file.set_len(cut as u64).unwrap();
        drop(file);

        let recovered = open(copy.path());
        assert_eq!(dump(&recovered), dumps[3], "cut at byte {cut}");
        assert_eq!(
            fs::metadata(&torn).unwrap().len(),
            start as u64,
            "tail truncated at cut {cut}"
        );

        // Appending after recovery continues cleanly.
        recovered
            .write(&floats("m", vec![99_000], vec![9.0]))
            .unwrap();
        recovered.crash();
        let again = open(copy.path());
        assert_eq!(
            point_total(&dump(&again)),
            4,
            "cut at byte {cut}, reopened after a new write"
        );
        again.crash();
    }

    let intact = open(original.path());
    assert_eq!(dump(&intact), dumps[4]);
}

#[test]
fn flipped_bit_recovers_to_last_good_record() {
    let original = tempfile::tempdir().unwrap();
    let storage = open(original.path());
    let dumps = write_numbered_batches(&storage, 5);
    storage.crash();
    let segment = wal_segments(original.path()).pop().unwrap();
    let spans = record_spans(&segment);
    let segment_name = segment.file_name().unwrap().to_owned();

    // A flipped bit in the body, the CRC, the sequence number and the
    // length of record 2 (0-based) leaves records 0 and 1.
    for offset_in_record in [20usize, 5, 9, 0] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let path = copy.path().join("wal").join(&segment_name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[spans[2].0 + offset_in_record] ^= 0x04;
        fs::write(&path, &bytes).unwrap();

        let recovered = open(copy.path());
        assert_eq!(
            dump(&recovered),
            dumps[2],
            "bit flipped at byte {offset_in_record} of the record"
        );
        recovered.crash();
    }
}

#[test]
fn crash_between_block_commit_and_wal_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let memory = MemoryStorage::new();
    for i in 0..5 {
        let batch = floats("m", vec![i, i + 100], vec![i as f64, -(i as f64)]);
        storage.write(&batch).unwrap();
        memory.write(&batch).unwrap();
    }
    storage.engine.flush(FlushStop::AfterCatalogCommit).unwrap();
    let segments_before = wal_segments(dir.path());
    assert!(!segments_before.is_empty());
    storage.crash();

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), dump(&memory));
    assert_eq!(
        reopened.metric("m").unwrap().point_count,
        10,
        "no point counted twice"
    );
    reopened.flush().unwrap();
    let segments_after = wal_segments(dir.path());
    assert_eq!(segments_after.len(), 1, "{segments_after:?}");
    assert!(
        record_spans(&segments_after[0]).is_empty(),
        "the flush left records in the wal"
    );
    reopened.crash();
    assert_eq!(dump(&open(dir.path())), dump(&memory));
}

#[test]
fn interrupted_flush_leftovers_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .write(&floats("m", vec![1, 2], vec![1.0, 2.0]))
        .unwrap();
    storage.flush().unwrap();
    storage.write(&floats("m", vec![3], vec![3.0])).unwrap();
    let expected = dump(&storage);
    storage.crash();

    // A renamed block the catalog never listed and a half-written one.
    let blocks = dir.path().join("blocks");
    let listed = block_files(dir.path());
    fs::copy(&listed[0], blocks.join("00000000000000000077.blk")).unwrap();
    fs::write(blocks.join("00000000000000000078.blk.tmp"), b"partial").unwrap();

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), expected);
    assert_eq!(block_files(dir.path()), listed);
}

#[test]
fn retention_frees_disk_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let hour = 3_600_000_000_000i64;
    for part in 0..3i64 {
        let times: Vec<i64> = (0..5_000).map(|i| part * hour + i * 600_000_000).collect();
        // No repeating pattern, so a block's size grows with its points
        // and is not cut down by long matches in the byte-plane encoding.
        let values: Vec<f64> = (0..5_000)
            .map(|i| ((i * i * 7919) % 100_003) as f64 * 0.37)
            .collect();
        storage.write(&floats("m", times, values)).unwrap();
        storage
            .write(&floats("keep", vec![part], vec![1.0]))
            .unwrap();
        storage.flush().unwrap();
    }
    let before = dump(&storage);
    let bytes_before = file_bytes(&block_files(dir.path()));
    assert_eq!(storage.stats().block_bytes, bytes_before);

    // Drops block 0 whole and half of block 1.
    let cutoff = hour + 2_500 * 600_000_000;
    let outcome = storage.delete_before("m", cutoff).unwrap();
    assert_eq!(outcome.points_deleted, 7_500);
    assert_eq!(outcome.series_deleted, 0);
    let bytes_after = file_bytes(&block_files(dir.path()));
    assert!(
        bytes_after * 10 < bytes_before * 6,
        "{bytes_before} bytes before, {bytes_after} after"
    );
    assert_eq!(storage.stats().block_bytes, bytes_after);

    let after = dump(&storage);
    let key = ("m".to_owned(), tags(&[("host", "a")]).to_string());
    let expected: Vec<(i64, Value)> = before[&key]
        .iter()
        .filter(|(t, _)| *t >= cutoff)
        .cloned()
        .collect();
    assert_eq!(after[&key], expected);
    let keep_key = ("keep".to_owned(), key.1.clone());
    assert_eq!(
        after[&keep_key], before[&keep_key],
        "other metrics untouched"
    );

    let outcome = storage.delete_metric("m").unwrap();
    assert_eq!(outcome.points_deleted, 7_500);
    assert_eq!(outcome.series_deleted, 1);
    let bytes_final = file_bytes(&block_files(dir.path()));
    assert!(
        bytes_final < 1_000,
        "{bytes_final} bytes left for one small metric"
    );
    storage.close().unwrap();
    drop(storage);

    let reopened = open(dir.path());
    assert!(reopened.metric("m").is_none());
    assert_eq!(dump(&reopened)[&keep_key], before[&keep_key]);
}

#[test]
fn deletions_replay_after_crash() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .write(&floats("m", vec![1, 2, 3], vec![1.0, 2.0, 3.0]))
        .unwrap();
    storage.write(&floats("gone", vec![1], vec![1.0])).unwrap();
    storage.flush().unwrap();
    storage
        .write(&floats("m", vec![4, 0], vec![4.0, 0.0]))
        .unwrap();
    storage.delete_before("m", 3).unwrap();
    storage.write(&floats("m", vec![1], vec![10.0])).unwrap();
    storage.delete_metric("gone").unwrap();
    storage.write(&floats("gone", vec![7], vec![7.0])).unwrap();
    let expected = dump(&storage);
    storage.crash();

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), expected);
    assert_eq!(reopened.metric("gone").unwrap().point_count, 1);
    reopened.crash();
    assert_eq!(dump(&open(dir.path())), expected, "second restart");
}

#[test]
fn series_emptied_by_retention_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .write(&floats("m", vec![5, 1, 9], vec![5.0, 1.0, 9.0]))
        .unwrap();
    storage.flush().unwrap();
    assert_eq!(storage.delete_before("m", 6).unwrap().points_deleted, 2);
    let outcome = storage.delete_before("m", 100).unwrap();
    assert_eq!(outcome.series_deleted, 1);
    assert!(storage.series("m").is_empty());
    assert!(block_files(dir.path()).is_empty());
}

#[test]
fn catalog_changes_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .set_retention_policy(RetentionPolicy {
            name: "short".into(),
            max_age: Duration::from_secs(60),
        })
        .unwrap();
    storage
        .create_metric(MetricSpec {
            name: "latency".into(),
            data_type: DataType::Duration,
            description: "request latency".into(),
            unit: "ms".into(),
            retention_policy: "short".into(),
        })
        .unwrap();
    storage
        .create_metric(MetricSpec {
            name: "temp".into(),
            data_type: DataType::Float,
            description: String::new(),
            unit: String::new(),
            retention_policy: String::new(),
        })
        .unwrap();
    storage.set_metric_policy("temp", "archive").unwrap();
    storage
        .create_metric(MetricSpec {
            name: "doomed".into(),
            data_type: DataType::Integer,
            description: String::new(),
            unit: String::new(),
            retention_policy: String::new(),
        })
        .unwrap();
    storage.delete_metric("doomed").unwrap();
    let policies = storage.retention_policies();
    let metrics = storage.list_metrics();
    storage.crash();

    for round in ["after crash", "after flush and close"] {
        let reopened = open(dir.path());
        assert_eq!(reopened.retention_policies(), policies, "{round}");
        let reopened_metrics = reopened.list_metrics();
        assert_eq!(reopened_metrics.len(), 2, "{round}");
        for (a, b) in reopened_metrics.iter().zip(&metrics) {
            assert_eq!(a.name, b.name, "{round}");
            assert_eq!(a.data_type, b.data_type, "{round}");
            assert_eq!(a.description, b.description, "{round}");
            assert_eq!(a.unit, b.unit, "{round}");
            assert_eq!(a.retention_policy, b.retention_policy, "{round}");
            assert_eq!(a.created_ns, b.created_ns, "{round}");
        }
        reopened.flush().unwrap();
        reopened.close().unwrap();
    }
}

#[test]
fn concurrent_sync_writers_are_all_durable() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(open(dir.path()));
    let threads: Vec<_> = (0..4i64)
        .map(|writer| {
            let storage = storage.clone();
            std::thread::spawn(move || {
                for i in 0..100i64 {
                    let batch = WriteBatch {
                        series: vec![entry(
                            "m",
                            tags(&[("writer", &writer.to_string())]),
                            vec![i, i + 1_000],
                            Column::I64(vec![i, -i]),
                        )],
                    };
                    storage.write(&batch).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let expected = dump(storage.as_ref());
    assert_eq!(point_total(&expected), 800);
    let storage = Arc::into_inner(storage).unwrap();
    storage.crash();
    assert_eq!(dump(&open(dir.path())), expected);
}

#[test]
fn summaries_come_from_untouched_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .write(&floats("m", vec![10, 20, 30], vec![1.0, 2.0, 6.0]))
        .unwrap();
    storage.flush().unwrap();
    storage.write(&floats("m", vec![40], vec![4.0])).unwrap();
    let series = storage.series("m")[0].id;

    let mut parts = Vec::new();
    storage
        .scan_summarized("m", series, TimeRange::ALL, &mut |part| {
            parts.push(match part {
                ScanPart::Summary(summary) => format!("summary {summary:?}"),
                ScanPart::Points(times, _) => format!("points {times:?}"),
            })
        })
        .unwrap();
    let summary = PointSummary {
        first_time_ns: 10,
        last_time_ns: 30,
        count: 3,
        sum: 9.0,
        min: 1.0,
        max: 6.0,
    };
    assert_eq!(
        parts,
        vec![format!("summary {summary:?}"), "points [40]".to_owned()]
    );

    // A range that cuts the chunk, or a head point inside its span,
    // forces decoding.
    let mut cut = Vec::new();
    storage
        .scan_summarized("m", series, TimeRange::new(15, 100), &mut |part| {
            if let ScanPart::Points(times, _) = part {
                cut.extend_from_slice(times);
            }
        })
        .unwrap();
    assert_eq!(cut, vec![20, 30, 40]);
    storage.write(&floats("m", vec![25], vec![2.5])).unwrap();
    let mut merged = Vec::new();
    storage
        .scan_summarized("m", series, TimeRange::ALL, &mut |part| match part {
            ScanPart::Points(times, _) => merged.extend_from_slice(times),
            ScanPart::Summary(s) => panic!("unexpected summary {s:?}"),
        })
        .unwrap();
    assert_eq!(merged, vec![10, 20, 25, 30, 40]);
}

#[test]
fn stats_split_wal_and_block_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage
        .write(&floats("m", (0..1000).collect(), vec![1.0; 1000]))
        .unwrap();
    let stats = storage.stats();
    assert_eq!(stats.engine, "disk");
    assert_eq!(stats.points, 1000);
    assert_eq!(stats.series, 1);
    // 1 byte of time delta and 8 bytes of value per point.
    assert!(stats.wal_bytes > 9_000, "{} wal bytes", stats.wal_bytes);
    assert_eq!(stats.block_bytes, 0);
    assert!(stats.memory_bytes > 16_000);
    storage.flush().unwrap();
    let stats = storage.stats();
    assert_eq!(stats.points, 1000);
    assert!(stats.block_bytes > 0);
    assert!(
        stats.block_bytes < 1_000,
        "{} block bytes",
        stats.block_bytes
    );
    assert!(
        stats.wal_bytes < 100,
        "{} wal bytes after flush",
        stats.wal_bytes
    );
}

#[test]
fn every_durability_mode_keeps_written_points() {
    for durability in [
        Durability::Sync,
        Durability::Interval(Duration::from_millis(5)),
        Durability::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = manual_config(dir.path());
        config.durability = durability;
        let storage = DiskStorage::open(config).unwrap();
        storage
            .write(&floats("m", vec![1, 2], vec![1.0, 2.0]))
            .unwrap();
        // Written to the kernel before `write` returns, so a process
        // crash loses nothing in any mode.
        storage.crash();
        let reopened = open(dir.path());
        assert_eq!(point_total(&dump(&reopened)), 2, "{durability:?}");
    }
}

#[test]
fn second_open_of_a_data_dir_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _storage = open(dir.path());
    let err = DiskStorage::open(manual_config(dir.path())).err().unwrap();
    assert!(matches!(err, DiskError::Locked { .. }), "{err}");
}

#[test]
fn writes_after_close_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    storage.close().unwrap();
    assert!(storage.write(&floats("m", vec![1], vec![1.0])).is_err());
}

#[test]
fn background_thread_flushes_at_point_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.head_flush_points = 100;
    config.maintenance_interval = Duration::from_millis(10);
    let storage = DiskStorage::open(config).unwrap();
    storage
        .write(&floats("m", (0..150).collect(), vec![0.5; 150]))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while storage.stats().block_bytes == 0 {
        assert!(std::time::Instant::now() < deadline, "no flush within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(point_total(&dump(&storage)), 150);
}

#[test]
fn durability_parses_from_text() {
    assert_eq!("sync".parse::<Durability>(), Ok(Durability::Sync));
    assert_eq!("none".parse::<Durability>(), Ok(Durability::None));
    assert_eq!(
        "interval".parse::<Durability>(),
        Ok(Durability::Interval(DEFAULT_FSYNC_INTERVAL))
    );
    assert_eq!(
        "interval:250ms".parse::<Durability>(),
        Ok(Durability::Interval(Duration::from_millis(250)))
    );
    assert_eq!(
        "interval:2s".parse::<Durability>(),
        Ok(Durability::Interval(Duration::from_secs(2)))
    );
    assert!("interval:0ms".parse::<Durability>().is_err());
    assert!("often".parse::<Durability>().is_err());
}

#[test]
fn wal_rotates_and_recovers_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    let dumps = write_numbered_batches(&storage, 200);
    let segments = wal_segments(dir.path());
    assert!(segments.len() > 3, "{} segments", segments.len());
    storage.crash();

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), dumps[200]);
    reopened.flush().unwrap();
    assert_eq!(
        wal_segments(dir.path()).len(),
        1,
        "the flush deletes every covered segment"
    );
    reopened.crash();
    assert_eq!(dump(&open(dir.path())), dumps[200]);
}

#[test]
fn damage_in_older_segment_quarantines_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    let dumps = write_numbered_batches(&storage, 100);
    storage.crash();

    let segments = wal_segments(dir.path());
    assert!(segments.len() > 2, "{} segments", segments.len());
    let spans = record_spans(&segments[1]);
    let records_before: usize = segments[..1].iter().map(|s| record_spans(s).len()).sum();
    let mut bytes = fs::read(&segments[1]).unwrap();
    bytes[spans[1].0 + 20] ^= 0x01;
    fs::write(&segments[1], &bytes).unwrap();

    let reopened = open(dir.path());
    assert_eq!(dump(&reopened), dumps[records_before + 1]);
    // A copy of the damaged segment and every later segment.
    assert_eq!(damaged_files(dir.path()).len(), segments.len() - 1);
}

#[test]
fn scans_see_every_acknowledged_point_during_flushes() {
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.compaction_min_blocks = 2;
    config.durability = Durability::None;
    let storage = Arc::new(DiskStorage::open(config).unwrap());
    let acknowledged = Arc::new(AtomicI64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (storage, acknowledged, stop) = (storage.clone(), acknowledged.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut next = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let times: Vec<i64> = (next..next + 10).collect();
                storage.write(&floats("m", times, vec![1.0; 10])).unwrap();
                next += 10;
                acknowledged.store(next, Ordering::SeqCst);
            }
        })
    };
    let flusher = {
        let (storage, stop) = (storage.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                storage.flush().unwrap();
                storage.compact().unwrap();
            }
        })
    };

    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut scans = 0;
    while std::time::Instant::now() < deadline {
        let expected = acknowledged.load(Ordering::SeqCst);
        let Some(series) = storage.series("m").first().map(|s| s.id) else {
            continue;
        };
        let mut times = Vec::new();
        storage
            .scan("m", series, TimeRange::ALL, &mut |t, _| {
                times.extend_from_slice(t)
            })
            .unwrap();
        assert!(
            times.windows(2).all(|w| w[0] < w[1]),
            "scan {scans} is not strictly ascending"
        );
        assert!(
            times.len() as i64 >= expected,
            "scan {scans} found {} points, {expected} were acknowledged",
            times.len()
        );
        assert!(
            times
                .iter()
                .take(expected as usize)
                .copied()
                .eq(0..expected),
            "scan {scans} has a gap"
        );
        scans += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    flusher.join().unwrap();
    assert!(scans > 10, "only {scans} scans ran");
}

#[test]
fn summaries_cover_whole_chunks_inside_range() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let count = block::CHUNK_MAX_POINTS as i64 * 3;
    let times: Vec<i64> = (0..count).collect();
    storage
        .write(&floats("m", times.clone(), vec![2.0; count as usize]))
        .unwrap();
    storage.flush().unwrap();
    let series = storage.series("m")[0].id;

    // The range cuts the first and last chunk and covers the middle one.
    let range = TimeRange::new(10, count - 10);
    let mut points = 0u64;
    let mut summaries = Vec::new();
    storage
        .scan_summarized("m", series, range, &mut |part| match part {
            ScanPart::Points(t, _) => points += t.len() as u64,
            ScanPart::Summary(summary) => summaries.push(summary),
        })
        .unwrap();
    let chunk = block::CHUNK_MAX_POINTS as u64;
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].count, chunk);
    assert_eq!(summaries[0].sum, 2.0 * chunk as f64);
    assert_eq!(summaries[0].first_time_ns, chunk as i64);
    assert_eq!(points + summaries[0].count, count as u64 - 20);
}

#[test]
fn compaction_joins_small_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.compaction_min_blocks = 3;
    let storage = DiskStorage::open(config).unwrap();
    for part in 0..3i64 {
        storage
            .write(&floats("m", vec![part * 10, part * 10 + 1], vec![1.0, 2.0]))
            .unwrap();
        storage.flush().unwrap();
    }
    let before = dump(&storage);
    assert_eq!(storage.compact().unwrap(), 1);
    let blocks = storage.engine.metric_state("m").unwrap().block_list();
    assert_eq!(blocks.len(), 1);
    let series = storage.series("m")[0].id;
    assert_eq!(
        blocks[0].entries_for(series).len(),
        1,
        "three two-point chunks become one"
    );
    assert_eq!(dump(&storage), before);
    assert_eq!(
        block_files(dir.path()).len(),
        1,
        "the merged inputs are deleted"
    );
}

#[test]
fn missing_catalog_rejects_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    write_numbered_batches(&storage, 50);
    storage.flush().unwrap();
    write_numbered_batches(&storage, 50);
    storage.crash();
    let blocks_before = block_files(dir.path());
    let segments_before = wal_segments(dir.path());
    assert!(!blocks_before.is_empty());

    for catalog in [None, Some(&b"{ not json"[..])] {
        let catalog_path = dir.path().join("catalog.json");
        match catalog {
            None => {
                let _ = fs::remove_file(&catalog_path);
            }
            Some(bytes) => fs::write(&catalog_path, bytes).unwrap(),
        }

        let err = match DiskStorage::open(manual_config(dir.path())) {
            Ok(_) => panic!("open succeeded without a valid catalog"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("Restore catalog.json"), "{err}");
        assert_eq!(block_files(dir.path()), blocks_before);
        assert_eq!(wal_segments(dir.path()), segments_before);
    }
}

#[test]
fn missing_catalog_with_only_wal_rejects_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    write_numbered_batches(&storage, 100);
    storage.crash();
    let segments = wal_segments(dir.path());
    assert!(segments.len() > 2, "{} segments", segments.len());
    fs::remove_file(&segments[0]).unwrap();
    fs::remove_file(dir.path().join("catalog.json")).unwrap();

    assert!(DiskStorage::open(manual_config(dir.path())).is_err());
    assert_eq!(wal_segments(dir.path()), segments[1..]);
}

#[test]
fn empty_data_dir_opens() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("new");
    let storage = open(&data_dir);
    storage.write(&floats("m", vec![1], vec![1.0])).unwrap();
    drop(storage);
    assert_eq!(point_total(&dump(&open(&data_dir))), 1);
}

fn damaged_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".damaged"))
        .collect();
    paths.sort();
    paths
}

#[test]
fn missing_wal_segment_keeps_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    let dumps = write_numbered_batches(&storage, 100);
    storage.crash();

    let segments = wal_segments(dir.path());
    assert!(segments.len() > 2, "{} segments", segments.len());
    let missing = record_spans(&segments[1]).len();
    let later_bytes = file_bytes(&segments[2..]);
    fs::remove_file(&segments[1]).unwrap();

    let reopened = open(dir.path());
    assert_eq!(
        point_total(&dump(&reopened)),
        point_total(&dumps[100]) - missing,
        "every record outside the missing segment is replayed"
    );
    assert_eq!(file_bytes(&segments[2..]), later_bytes);
    reopened.write(&floats("m", vec![-1], vec![0.5])).unwrap();
    let expected = dump(&reopened);
    reopened.crash();
    assert_eq!(dump(&open(dir.path())), expected);
}

#[test]
fn repeated_wal_segment_is_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.wal_segment_bytes = 2_048;
    let storage = DiskStorage::open(config).unwrap();
    let dumps = write_numbered_batches(&storage, 100);
    storage.crash();

    // A segment named after the last record of segment 0, whose one
    // record repeats that record, is placed twice under the same name.
    let segments = wal_segments(dir.path());
    let last_of_first = record_spans(&segments[0]).len() as u64;
    let data = fs::read(&segments[0]).unwrap();
    let (start, len) = *record_spans(&segments[0]).last().unwrap();
    let mut repeated = data[..16].to_vec();
    repeated[8..16].copy_from_slice(&last_of_first.to_le_bytes());
    repeated.extend_from_slice(&data[start..start + len]);
    let name = dir
        .path()
        .join("wal")
        .join(format!("{last_of_first:020}.wal"));

    for round in 0..2 {
        fs::write(&name, &repeated).unwrap();
        let reopened = open(dir.path());
        assert_eq!(dump(&reopened), dumps[100], "round {round}");
        reopened.crash();
        assert!(!name.exists(), "round {round}");
    }
    assert_eq!(damaged_files(dir.path()).len(), 2);
}

#[test]
fn corrupt_record_keeps_segment_copy() {
    let original = tempfile::tempdir().unwrap();
    let storage = open(original.path());
    let dumps = write_numbered_batches(&storage, 5);
    storage.crash();
    let segment = wal_segments(original.path()).pop().unwrap();
    let segment_name = segment.file_name().unwrap().to_owned();
    let spans = record_spans(&segment);

    // Record 0 leaves no good record, so the whole segment is renamed.
    for record in [2usize, 0] {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(original.path(), copy.path());
        let path = copy.path().join("wal").join(&segment_name);
        let mut bytes = fs::read(&path).unwrap();
        bytes[spans[record].0 + 20] ^= 0x04;
        fs::write(&path, &bytes).unwrap();

        let recovered = open(copy.path());
        assert_eq!(dump(&recovered), dumps[record], "record {record}");
        recovered.crash();
        let copies = damaged_files(copy.path());
        assert_eq!(copies.len(), 1, "record {record}: {copies:?}");
        assert_eq!(fs::read(&copies[0]).unwrap(), bytes, "record {record}");
    }
}

#[test]
fn torn_tail_leaves_no_copy() {
    let dir = tempfile::tempdir().unwrap();
    let storage = open(dir.path());
    let dumps = write_numbered_batches(&storage, 5);
    storage.crash();
    let segment = wal_segments(dir.path()).pop().unwrap();
    let spans = record_spans(&segment);
    let mut bytes = fs::read(&segment).unwrap();

    // A flipped bit in the last record is a torn tail too.
    bytes[spans[4].0 + 20] ^= 0x04;
    fs::write(&segment, &bytes).unwrap();
    let recovered = open(dir.path());
    assert_eq!(dump(&recovered), dumps[4]);
    recovered.crash();
    assert!(damaged_files(dir.path()).is_empty());
}

#[test]
fn compaction_continues_after_failed_metric() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = manual_config(dir.path());
    config.compaction_min_blocks = 3;
    let storage = DiskStorage::open(config).unwrap();
    for part in 0..3i64 {
        for metric in ["a", "b"] {
            storage
                .write(&floats(metric, vec![part * 10], vec![1.0]))
                .unwrap();
        }
        storage.flush().unwrap();
    }

    // Zeroed chunk bytes fail their CRC when compaction reads them.
    for block in storage
        .engine
        .metric_state("a")
        .unwrap()
        .block_list()
        .iter()
    {
        let path = block::block_path(&dir.path().join("blocks"), block.id);
        let length = fs::metadata(&path).unwrap().len() as usize;
        fs::write(&path, vec![0u8; length]).unwrap();
    }

    for round in 0..2 {
        assert!(storage.compact().is_err(), "round {round}");
        let a_blocks = storage.engine.metric_state("a").unwrap().block_list();
        let b_blocks = storage.engine.metric_state("b").unwrap().block_list();
        assert_eq!(a_blocks.len(), 3, "round {round}");
        assert_eq!(b_blocks.len(), 1, "round {round}");
    }
    storage.crash();
}

#[test]
fn data_dir_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    fs::write(&path, b"not a directory").unwrap();
    let err = match DiskStorage::open(manual_config(&path)) {
        Ok(_) => panic!("open succeeded on a regular file"),
        Err(err) => err.to_string(),
    };
    assert!(err.contains("is not a directory"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"not a directory");
}

mod legacy {
    use std::sync::Arc;

    use crate::model::{Column, SeriesWrite, TagSet, WriteBatch};

    include!("testdata/legacy_batch.rs");

    pub fn batch() -> WriteBatch {
        legacy_fixture_batch()
    }
}

/// The `testdata/legacy-blocks` directory was written, flushed and closed
/// by the code before frame-of-reference and byte-plane encodings, so its
/// chunks use the delta-of-delta timestamp layout and the value encodings
/// that code picked among decimal, Gorilla, raw, varint and packed.
#[test]
fn blocks_of_previous_format_decode() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src/storage/disk/testdata/legacy-blocks");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture, dir.path());
    let mut config = manual_config(dir.path());
    config.compaction_min_blocks = 2;
    let storage = DiskStorage::open(config).unwrap();
    assert_eq!(block_files(dir.path()).len(), 4, "one block per metric");

    let expected = MemoryStorage::new();
    expected.write(&legacy::batch()).unwrap();
    let stored = dump(&storage);
    assert_eq!(point_total(&stored), 1811);
    assert_eq!(stored, dump(&expected));
    // `Value` compares doubles by value, so check that -0.0 kept its sign.
    let specials = &stored[&("gauge".to_owned(), r#"{host="specials"}"#.to_owned())];
    assert!(matches!(specials[0].1, Value::F64(v) if v.to_bits() == (-0.0f64).to_bits()));

    // Compaction rewrites the old chunks in the current encodings.
    storage.write(&legacy::batch()).unwrap();
    storage.flush().unwrap();
    assert_eq!(storage.compact().unwrap(), 4, "one run per metric");
    assert_eq!(block_files(dir.path()).len(), 4);
    assert_eq!(dump(&storage), dump(&expected), "after compaction");
}

/// One operation applied to an engine under test.
type Step = Box<dyn Fn(&DiskStorage)>;

/// Scans every series of every metric twice, so the second scan reads
/// from the chunk cache where the first one filled it.
fn dump_twice(storage: &DiskStorage) -> Dump {
    let first = dump(storage);
    let second = dump(storage);
    assert_eq!(first, second, "a cached scan differs from the first scan");
    second
}

#[test]
fn chunk_cache_follows_deletion_retention_compaction() {
    let cached_dir = tempfile::tempdir().unwrap();
    let plain_dir = tempfile::tempdir().unwrap();
    let mut cached_config = manual_config(cached_dir.path());
    cached_config.compaction_min_blocks = 3;
    let mut plain_config = manual_config(plain_dir.path());
    plain_config.compaction_min_blocks = 3;
    plain_config.chunk_cache_bytes = 0;
    let cached = DiskStorage::open(cached_config).unwrap();
    let plain = DiskStorage::open(plain_config).unwrap();

    // The same operations on both engines; after each one the engine with
    // a warm cache must return what the one without a cache returns.
    let steps: Vec<Step> = vec![
        Box::new(|s| {
            for part in 0..3i64 {
                let times: Vec<i64> = (part * 100..part * 100 + 100).collect();
                let values = times.iter().map(|&t| t as f64 / 4.0).collect();
                s.write(&floats("m", times, values)).unwrap();
                s.flush().unwrap();
            }
        }),
        // Newer values for old timestamps, in a block of their own.
        Box::new(|s| {
            s.write(&floats("m", vec![5, 150, 250], vec![-1.0, -2.0, -3.0]))
                .unwrap();
            s.flush().unwrap();
        }),
        Box::new(|s| assert!(s.compact().unwrap() >= 1)),
        Box::new(|s| {
            s.delete_before("m", 120).unwrap();
        }),
        Box::new(|s| {
            s.delete_metric("m").unwrap();
        }),
        // A new metric of the same name reuses nothing of the old one.
        Box::new(|s| {
            s.write(&floats("m", vec![1, 2, 3], vec![7.0, 8.0, 9.0]))
                .unwrap();
            s.flush().unwrap();
        }),
    ];
    for (index, step) in steps.iter().enumerate() {
        step(&cached);
        step(&plain);
        assert_eq!(dump_twice(&cached), dump(&plain), "after step {index}");
    }
    assert!(cached.engine.chunk_cache.used_bytes() > 0);
    assert_eq!(plain.engine.chunk_cache.used_bytes(), 0);
    cached.close().unwrap();
    plain.close().unwrap();
}
