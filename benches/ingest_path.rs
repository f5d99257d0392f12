//! Ingest hot paths: decoding and validating a request message, and
//! applying a write batch to the memory engine (series lookup and head
//! append).

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use tidemark::cli::bench::generate::Shape;
use tidemark::grpc::points::decode_message;
use tidemark::model::limits::Limits;
use tidemark::storage::Storage;
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

// TODO: block encode and decode benchmarks go here once the disk engine
// (src/storage/disk/) lands: encode a sealed head of 1000 series x 1000
// gauge points into blocks, and decode them back, reporting bytes per
// point next to the time.

criterion_group!(benches, decode, write);
criterion_main!(benches);
