//! Data shared by the micro-benchmarks, built with the same generator as
//! `tidemark bench`: 1000 series, 3 tags (`host`, `group` with 10 values,
//! `tag2`), a point every 10 s per series and gauge values.

#![allow(dead_code)]

use tidemark::cli::bench::generate::{Layout, Message, SeriesSet, Shape};
use tidemark::grpc::points::decode_message;
use tidemark::model::WriteBatch;
use tidemark::model::limits::Limits;
use tidemark::storage::Storage;
use tidemark::storage::memory::MemoryStorage;

pub const SERIES: usize = 1000;
pub const METRIC: &str = "bench_points";

/// 2026-01-01T00:00:00Z.
pub const START_NS: i64 = 1_767_225_600_000_000_000;
pub const INTERVAL_NS: i64 = 10_000_000_000;

pub fn series_set(shape: Shape) -> SeriesSet {
    SeriesSet::new(METRIC, shape, SERIES, 3, 1)
}

/// Generates `total_points` in time order on one stream, as messages of
/// `points_per_message` points with runs of `run_length` points.
pub fn messages(
    shape: Shape,
    total_points: u64,
    points_per_message: usize,
    run_length: usize,
) -> (SeriesSet, Vec<Message>) {
    let layout = Layout {
        series: SERIES,
        total_points,
        points_per_message,
        run_length,
        streams: 1,
        start_ns: START_NS,
        interval_ns: INTERVAL_NS,
    };
    let mut set = series_set(shape);
    let mut messages = Vec::new();
    layout.generate_stream(&mut set, 0, |message| messages.push(message));
    (set, messages)
}

/// Returns the first message of a load of 100 points per series: 10
/// series with a run of 100 points each.
pub fn ten_series_message(shape: Shape) -> (SeriesSet, Message) {
    let (set, mut generated) = messages(shape, 100 * SERIES as u64, 1000, 100);
    let message = generated.swap_remove(0);
    assert_eq!(message.runs.len(), 10, "expected 10 runs of 100 points");
    assert_eq!(message.point_count(), 1000);
    (set, message)
}

/// Decodes generated messages into write batches, as the ingest handler
/// does before it queues them.
pub fn batches(set: &SeriesSet, messages: &[Message]) -> Vec<WriteBatch> {
    let limits = Limits::default();
    messages
        .iter()
        .map(|message| {
            let request = prost::Message::encode_to_vec(&set.columnar_request(message));
            decode_message(&request, 0, &limits)
                .expect("generated messages are valid protobuf")
                .batch
        })
        .collect()
}

/// Returns a memory engine holding `total_points` gauge points.
pub fn filled_storage(total_points: u64) -> MemoryStorage {
    let (set, messages) = messages(Shape::Gauge, total_points, 10_000, 1_000);
    let storage = MemoryStorage::new();
    for batch in batches(&set, &messages) {
        storage.write(&batch).expect("memory write failed");
    }
    storage
}
