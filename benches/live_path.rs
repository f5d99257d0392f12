//! Live window hot path: adding points to open windows, directly through
//! `WindowTable::add` and through `LiveHub::observe` as the ingest threads
//! call it.

mod support;

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::RwLock;
use tidemark::aggregate::AggFn;
use tidemark::cli::bench::generate::Shape;
use tidemark::clock::now_ns;
use tidemark::ingest::BatchObserver;
use tidemark::live::window::{EmitMode, WindowSpec, WindowTable};
use tidemark::live::{LiveConfig, LiveHub};
use tidemark::model::filter::FilterSet;
use tidemark::model::{SeriesId, ValueRef, WriteBatch};
use tidemark::storage::memory::MemoryStorage;
use tidemark::storage::{Storage, WriteOutcome};

use support::{METRIC, batches, ten_series_message};

const POINTS_PER_BATCH: u64 = 1000;
const SECOND_NS: i64 = 1_000_000_000;
const DAY_NS: i64 = 86_400 * SECOND_NS;

fn spec(group_by: &[&str]) -> WindowSpec {
    WindowSpec {
        metric: METRIC.to_owned(),
        filters: FilterSet::default(),
        group_by: group_by.iter().map(|key| (*key).to_owned()).collect(),
        window_ns: SECOND_NS,
        slide_ns: SECOND_NS,
        functions: vec![AggFn::Count, AggFn::Mean, AggFn::Max],
        allowed_lateness_ns: 0,
        emit: EmitMode::OnClose,
    }
}

/// Builds a batch of 10 series x 100 points one day ahead, so that their
/// windows stay open for the whole benchmark.
fn future_batch() -> WriteBatch {
    let (set, message) = ten_series_message(Shape::Gauge);
    let mut batch = batches(&set, &[message]).remove(0);
    assert_eq!(batch.point_count() as u64, POINTS_PER_BATCH);
    // The generated times are 10 s apart. Divided by a million they are
    // 10 ms apart, so a run of 100 stays inside one 1 s window.
    let window_start = (now_ns() + DAY_NS) / SECOND_NS * SECOND_NS;
    for entry in &mut batch.series {
        for time in &mut entry.times_ns {
            *time = window_start + (*time - support::START_NS) / 1_000_000;
        }
    }
    batch
}

fn window_add(c: &mut Criterion) {
    let batch = future_batch();
    let now = now_ns();
    let mut group = c.benchmark_group("live_add_1000_points");
    group.throughput(Throughput::Elements(POINTS_PER_BATCH));

    group.bench_function("window_table_add", |b| {
        let spec = spec(&[]);
        let mut table = WindowTable::default();
        let key = Vec::new();
        b.iter(|| {
            for entry in &batch.series {
                for (i, &time_ns) in entry.times_ns.iter().enumerate() {
                    let value: ValueRef<'_> = entry.values.get(i);
                    table.add(&spec, &key, SeriesId(1), time_ns, value, now);
                }
            }
        })
    });

    for (name, group_by) in [
        ("hub_observe_no_group", &[][..]),
        ("hub_observe_by_group", &["group"][..]),
    ] {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let hub = LiveHub::start(storage, Arc::new(RwLock::new(())), LiveConfig::default());
        let subscription = hub
            .subscribe(name.as_bytes().to_vec(), spec(group_by), 0)
            .expect("subscribe failed");
        let outcome = WriteOutcome::default();
        group.bench_function(name, |b| b.iter(|| hub.observe(&batch, &outcome)));
        drop(subscription);
        hub.shutdown();
    }
    group.finish();
}

criterion_group!(benches, window_add);
criterion_main!(benches);
