//! Measures the disk engine: on-disk bytes per point for a few kinds of
//! series, and write throughput under each durability mode.
//!
//! Run with `cargo run --release --example disk_bytes -- [POINTS] [SECONDS]`.
//! POINTS (default 10,000,000) is the size of each compression data set;
//! SECONDS (default 5) is how long each durability mode is driven. Data
//! goes to a temporary directory that is deleted at exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tidemark::model::{Column, SeriesWrite, TagSet, WriteBatch};
use tidemark::storage::Storage;
use tidemark::storage::disk::{DiskConfig, DiskStorage, Durability};

/// Points per write batch in the compression runs.
const LOAD_BATCH_POINTS: usize = 10_000;
/// 2023-11-14T22:13:20Z, a round start time in nanoseconds.
const START_NS: i64 = 1_700_000_000_000_000_000;
const TEN_SECONDS_NS: i64 = 10_000_000_000;

/// SplitMix64, a small deterministic generator so runs are repeatable,
/// and the running total of the counter data set.
struct Random {
    state: u64,
    counter: i64,
}

impl Random {
    fn new(seed: u64) -> Random {
        Random {
            state: seed,
            counter: 0,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a double uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct DataSet {
    name: &'static str,
    point: fn(&mut Random, i64) -> (i64, f64),
    /// Stores the values as an integer column; they must be whole numbers.
    integers: bool,
}

/// Returns point `i` of a temperature-like gauge every 10 s with 0.01 resolution: a slow
/// daily wave plus up to ±0.05 of noise.
fn gauge_decimal(random: &mut Random, i: i64) -> (i64, f64) {
    let wave = 20.0 + 2.0 * (i as f64 / 8640.0 * std::f64::consts::TAU).sin();
    let noisy = wave + (random.unit() - 0.5) * 0.1;
    (
        START_NS + i * TEN_SECONDS_NS,
        (noisy * 100.0).round() / 100.0,
    )
}

/// Returns point `i` of the same gauge with timestamps off by up to ±5 ms at millisecond
/// precision, as a scraper's clock gives them.
fn gauge_decimal_time_jitter(random: &mut Random, i: i64) -> (i64, f64) {
    let (time, value) = gauge_decimal(random, i);
    let jitter_ms = (random.next_u64() % 11) as i64 - 5;
    (time + jitter_ms * 1_000_000, value)
}

/// Returns point `i` of the gauge without rounding, so every mantissa
/// bit is noise.
fn gauge_full_precision(random: &mut Random, i: i64) -> (i64, f64) {
    let wave = 20.0 + 2.0 * (i as f64 / 8640.0 * std::f64::consts::TAU).sin();
    (
        START_NS + i * TEN_SECONDS_NS,
        wave + (random.unit() - 0.5) * 0.1,
    )
}

/// Returns point `i` of the gauge of `tidemark bench ingest --shape
/// gauge`: a fixed level plus independent noise of up to ±0.50 in 0.01
/// steps.
fn gauge_level_noise(random: &mut Random, i: i64) -> (i64, f64) {
    let noise_hundredths = (random.next_u64() % 101) as i64 - 50;
    (
        START_NS + i * TEN_SECONDS_NS,
        (5_000 + noise_hundredths) as f64 / 100.0,
    )
}

/// Returns point `i` of a counter that grows by 0 to 99 per point, as
/// `tidemark bench ingest --shape counter` makes it (without its rare
/// resets). The running total lives in `random`.
fn counter(random: &mut Random, i: i64) -> (i64, f64) {
    random.counter += (random.next_u64() % 100) as i64;
    (START_NS + i * TEN_SECONDS_NS, random.counter as f64)
}

/// Returns point `i` of uniformly random doubles every 10 s.
fn random_doubles(random: &mut Random, i: i64) -> (i64, f64) {
    (START_NS + i * TEN_SECONDS_NS, random.unit() * 2e6 - 1e6)
}

fn batch_of(metric: &str, tags: &TagSet, times: Vec<i64>, values: Column) -> WriteBatch {
    WriteBatch {
        series: vec![SeriesWrite {
            metric: metric.to_owned(),
            tags: tags.clone(),
            first_index: 0,
            times_ns: times,
            values,
        }],
    }
}

fn measure_bytes(data_set: &DataSet, points: usize) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let mut config = DiskConfig::new(dir.path());
    config.durability = Durability::None;
    let storage = DiskStorage::open(config).expect("open the data directory");
    let tags = TagSet::from_pairs(vec![("host".into(), "bench".into())]);
    let mut random = Random::new(42);
    let started = Instant::now();
    // Sum of WAL growth between batches: the bytes the WAL received,
    // although flushes delete segments along the way.
    let mut wal_written_bytes = 0;
    let mut wal_bytes = storage.stats().wal_bytes;
    let mut written = 0;
    while written < points {
        let count = LOAD_BATCH_POINTS.min(points - written);
        let (times, values): (Vec<i64>, Vec<f64>) = (written..written + count)
            .map(|i| (data_set.point)(&mut random, i as i64))
            .unzip();
        let values = if data_set.integers {
            Column::I64(values.into_iter().map(|v| v as i64).collect())
        } else {
            Column::F64(values)
        };
        storage
            .write(&batch_of("bench", &tags, times, values))
            .expect("write");
        let now = storage.stats().wal_bytes;
        wal_written_bytes += now.saturating_sub(wal_bytes);
        wal_bytes = now;
        written += count;
    }
    let load_seconds = started.elapsed().as_secs_f64();
    storage.flush().expect("flush");
    storage.compact().expect("compact");
    let stats = storage.stats();
    let blocks = std::fs::read_dir(dir.path().join("blocks"))
        .expect("list blocks")
        .count();
    println!(
        "{:<28} {:>11} points  {:>7.3} bytes/point in {} block(s)  wal {:>6.2} bytes/point  load {:>5.1} M points/s",
        data_set.name,
        stats.points,
        stats.block_bytes as f64 / stats.points as f64,
        blocks,
        wal_written_bytes as f64 / stats.points as f64,
        points as f64 / load_seconds / 1e6,
    );
    storage.close().expect("close");
}

fn measure_throughput(durability: Durability, writers: usize, batch_points: usize, seconds: u64) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let mut config = DiskConfig::new(dir.path());
    config.durability = durability;
    let storage = Arc::new(DiskStorage::open(config).expect("open the data directory"));
    let stop = Arc::new(AtomicBool::new(false));
    let batches = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..writers)
        .map(|writer| {
            let storage = storage.clone();
            let stop = stop.clone();
            let batches = batches.clone();
            std::thread::spawn(move || {
                let tags = TagSet::from_pairs(vec![("writer".into(), writer.to_string())]);
                let mut random = Random::new(writer as u64);
                let mut next = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let (times, values): (Vec<i64>, Vec<f64>) = (next..next + batch_points as i64)
                        .map(|i| gauge_decimal(&mut random, i))
                        .unzip();
                    next += batch_points as i64;
                    storage
                        .write(&batch_of("load", &tags, times, Column::F64(values)))
                        .expect("write");
                    batches.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("writer thread");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let batches = batches.load(Ordering::Relaxed) as f64;
    println!(
        "{:<22} {writers} writers x {batch_points:>4} points/batch: {:>9.0} batches/s {:>11.0} points/s",
        format!("{durability:?}"),
        batches / elapsed,
        batches * batch_points as f64 / elapsed,
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let points: usize = args
        .next()
        .map_or(10_000_000, |a| a.parse().expect("POINTS is a number"));
    let seconds: u64 = args
        .next()
        .map_or(5, |a| a.parse().expect("SECONDS is a number"));

    println!("on-disk size after flush and compaction, one series each");
    let data_sets = [
        DataSet {
            name: "gauge, 0.01 steps",
            point: gauge_decimal,
            integers: false,
        },
        DataSet {
            name: "gauge, 0.01 steps, ±5 ms",
            point: gauge_decimal_time_jitter,
            integers: false,
        },
        DataSet {
            name: "gauge, full-precision noise",
            point: gauge_full_precision,
            integers: false,
        },
        DataSet {
            name: "random doubles",
            point: random_doubles,
            integers: false,
        },
        DataSet {
            name: "gauge, level ±0.50 noise",
            point: gauge_level_noise,
            integers: false,
        },
        DataSet {
            name: "counter, +0..99 (doubles)",
            point: counter,
            integers: false,
        },
        DataSet {
            name: "counter, +0..99 (integers)",
            point: counter,
            integers: true,
        },
    ];
    for data_set in &data_sets {
        measure_bytes(data_set, points);
    }

    println!("\nwrite throughput, {seconds} s per mode");
    for durability in [
        Durability::Sync,
        Durability::Interval(Duration::from_millis(100)),
        Durability::None,
    ] {
        for (writers, batch_points) in [(1, 1), (4, 1), (4, 100), (4, 1000)] {
            measure_throughput(durability, writers, batch_points, seconds);
        }
    }
}
