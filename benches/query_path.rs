//! Query hot paths over 1M in-memory points: bucketed aggregation,
//! summary statistics, and the exact percentile on its own.

mod support;

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tidemark::aggregate::bucket::{Bucketer, Granularity};
use tidemark::aggregate::fill::FillMode;
use tidemark::aggregate::{AggFn, percentile_exact};
use tidemark::cli::bench::generate::SplitMix64;
use tidemark::model::TimeRange;
use tidemark::model::filter::FilterSet;
use tidemark::model::limits::Limits;
use tidemark::query::{AggregateQuery, QueryEngine};
use tidemark::storage::Storage;

use support::{METRIC, filled_storage};

const POINTS: u64 = 1_000_000;
const MINUTE_NS: i64 = 60_000_000_000;

fn mean_max_query(bucketer: Bucketer, group_by: &[&str]) -> AggregateQuery {
    AggregateQuery {
        metric: METRIC.to_owned(),
        range: None,
        filters: FilterSet::default(),
        bucketer,
        functions: vec![AggFn::Mean, AggFn::Max],
        group_by: group_by.iter().map(|key| (*key).to_owned()).collect(),
        fill: FillMode::None,
    }
}

fn aggregate(c: &mut Criterion) {
    let storage: Arc<dyn Storage> = Arc::new(filled_storage(POINTS));
    let engine = QueryEngine::new(storage, Arc::new(Limits::default()));

    let mut group = c.benchmark_group("aggregate_1m_points");
    group.throughput(Throughput::Elements(POINTS));
    group.sample_size(30);
    let cases = [
        (
            "mean_max_step_60s_by_group",
            mean_max_query(Bucketer::fixed(MINUTE_NS).unwrap(), &["group"]),
        ),
        (
            "mean_max_minute_utc_by_group",
            mean_max_query(
                Bucketer::calendar(Granularity::Minute, chrono_tz::UTC),
                &["group"],
            ),
        ),
        (
            "mean_max_step_60s_no_group",
            mean_max_query(Bucketer::fixed(MINUTE_NS).unwrap(), &[]),
        ),
    ];
    for (name, mut query) in cases {
        group.bench_function(name, |b| {
            b.iter(|| engine.aggregate(&mut query).expect("aggregate failed"))
        });
    }
    group.bench_function("statistics", |b| {
        b.iter(|| {
            engine
                .statistics(METRIC, TimeRange::ALL, &FilterSet::default())
                .expect("statistics failed")
        })
    });
    group.finish();
}

fn percentile(c: &mut Criterion) {
    let mut rng = SplitMix64::new(7);
    let values: Vec<f64> = (0..POINTS).map(|_| rng.next_f64() * 1000.0).collect();

    let mut group = c.benchmark_group("percentile_exact_1m_values");
    group.throughput(Throughput::Elements(POINTS));
    group.sample_size(30);
    for p in [50.0, 99.0] {
        group.bench_function(format!("p{p}"), |b| {
            b.iter_batched(
                || values.clone(),
                |mut values| percentile_exact(&mut values, p),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, aggregate, percentile);
criterion_main!(benches);
