//! Ingest hot paths: decoding and validating a request message, applying
//! a write batch to the memory engine (series lookup and head append),
//! and encoding and decoding one block chunk per value shape.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tidemark::cli::bench::generate::Shape;
use tidemark::grpc::points::decode_message;
use tidemark::model::limits::Limits;
use tidemark::model::{Column, ValueKind};
use tidemark::storage::Storage;
use tidemark::storage::disk::codec::{decode_chunk, encode_chunk};
use tidemark::storage::memory::MemoryStorage;

use support::{batches, messages, ten_series_message};

const POINTS_PER_MESSAGE: usize = 1000;

fn decode(c: &mut Criterion) {
    let limits = Limits::default();
    let (set, message) = ten_series_message(Shape::Gauge);
    // Requests as they arrive on the wire: decoding starts from bytes.
    let columnar = set.columnar_request(&message).encode_to_vec();
    let per_point = set.points_request(&message).encode_to_vec();

    let mut group = c.benchmark_group("decode_message");
    group.throughput(Throughput::Elements(POINTS_PER_MESSAGE as u64));
    group.bench_function("columnar_10_series_x_100", |b| {
        b.iter(|| decode_message(black_box(&columnar), 0, &limits).expect("valid message"))
    });
    group.bench_function("points_10_series_x_100", |b| {
        b.iter(|| decode_message(black_box(&per_point), 0, &limits).expect("valid message"))
    });
    group.finish();
}

/// Times `MemoryStorage::write` over a pool of batches in time order.
/// When the pool runs out, the storage is replaced by an empty one, so
/// every write appends after the stored points and memory stays bounded.
fn time_writes(pool: &[tidemark::model::WriteBatch], iterations: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut storage = MemoryStorage::new();
    let mut next = 0;
    for _ in 0..iterations {
        if next == pool.len() {
            storage = MemoryStorage::new();
            next = 0;
        }
        let started = Instant::now();
        black_box(storage.write(&pool[next]).expect("memory write failed"));
        total += started.elapsed();
        next += 1;
    }
    total
}

fn write(c: &mut Criterion) {
    // Pools of 2,000 batches of 1,000 points. Runs of 100 points hit 10
    // series per batch; runs of 1 point hit all 1,000, so series lookup
    // dominates.
    let (set, appended) = messages(Shape::Gauge, 2_000_000, POINTS_PER_MESSAGE, 100);
    let append_pool = batches(&set, &appended);
    let (set, scattered) = messages(Shape::Gauge, 2_000_000, POINTS_PER_MESSAGE, 1);
    let lookup_pool = batches(&set, &scattered);

    let mut group = c.benchmark_group("memory_write");
    group.throughput(Throughput::Elements(POINTS_PER_MESSAGE as u64));
    group.bench_function("10_series_x_100_points", |b| {
        b.iter_custom(|iterations| time_writes(&append_pool, iterations))
    });
    group.bench_function("1000_series_x_1_point", |b| {
        b.iter_custom(|iterations| time_writes(&lookup_pool, iterations))
    });
    group.finish();
}

/// Points per benchmarked chunk, the block writer's maximum.
const CHUNK_POINTS: usize = 4096;

/// SplitMix64 step, so the chunk data are the same on every run.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Returns the chunks of the block encode and decode benchmarks, each
/// 4096 points 10 s apart: the gauge of `tidemark bench ingest`, a
/// counter, full-precision gauge noise and random doubles.
fn chunk_shapes() -> Vec<(&'static str, Column)> {
    let unit = |i: u64| (mix(i) >> 11) as f64 / (1u64 << 53) as f64;
    let points = 0..CHUNK_POINTS as u64;
    vec![
        (
            "gauge_two_decimals",
            Column::F64(
                points
                    .clone()
                    .map(|i| (5_000 + (mix(i) % 101) as i64 - 50) as f64 / 100.0)
                    .collect(),
            ),
        ),
        (
            "counter_integers",
            Column::I64(
                points
                    .clone()
                    .scan(0i64, |total, i| {
                        *total += (mix(i) % 100) as i64;
                        Some(*total)
                    })
                    .collect(),
            ),
        ),
        (
            "gauge_full_precision",
            Column::F64(
                points
                    .clone()
                    .map(|i| 20.0 + (unit(i) - 0.5) * 0.1)
                    .collect(),
            ),
        ),
        (
            "random_doubles",
            Column::F64(points.map(|i| unit(i) * 2e6 - 1e6).collect()),
        ),
    ]
}

fn chunks(c: &mut Criterion) {
    let times: Vec<i64> = (0..CHUNK_POINTS as i64)
        .map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000)
        .collect();
    let mut group = c.benchmark_group("block_chunk");
    group.throughput(Throughput::Elements(CHUNK_POINTS as u64));
    for (name, values) in chunk_shapes() {
        let mut encoded = Vec::new();
        encode_chunk(&times, values.as_slice(), &mut encoded);
        eprintln!(
            "block_chunk/{name}: {:.3} bytes/point",
            encoded.len() as f64 / CHUNK_POINTS as f64
        );
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(encoded.len());
                encode_chunk(&times, values.as_slice(), &mut out);
                out
            })
        });
        let kind: ValueKind = values.kind();
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| decode_chunk(black_box(&encoded), CHUNK_POINTS, kind).expect("decode"))
        });
    }
    group.finish();
}

criterion_group!(benches, decode, write, chunks);
criterion_main!(benches);
