//! `tidemark bench query`: concurrent aggregation queries against
//! tidemark (Aggregate, and GetStatistics with `--statistics`) or the
//! matching range queries against VictoriaMetrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::transport::Channel;

use super::ingest::open_channel;
use super::report::{Latencies, Report, per_second};
use super::vm::{VictoriaMetrics, aggregation_query};
use super::{Target, TargetArgs};
use crate::cli::ClientArgs;
use crate::cli::parse::{AggregationArg, parse_aggregation, to_proto_duration};
use crate::cli::query::{RangeArgs, check_unique_labels, parse_positive_duration};
use crate::proto::v1::query_service_client::QueryServiceClient;
use crate::proto::v1::{AggregateRequest, GetStatisticsRequest, TimeRange};

/// Largest response the benchmark client decodes.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

#[derive(clap::Args, Debug, Clone)]
pub struct QueryBenchArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    /// Metric to query.
    #[arg(long, default_value = "bench_points")]
    pub metric: String,

    #[command(flatten)]
    pub range: RangeArgs,

    /// Bucket width, aligned to the Unix epoch.
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub step: Duration,

    /// Aggregation per bucket: mean, max, min, sum or count (all of which
    /// VictoriaMetrics can match), or any other `tidemark aggregate` name
    /// for tidemark alone. Repeat for more.
    #[arg(long = "agg", value_name = "NAME", default_values = ["mean", "max"], value_parser = parse_aggregation)]
    pub aggregations: Vec<AggregationArg>,

    /// Tag keys to group by, separated by commas; an empty value groups
    /// nothing.
    #[arg(
        long = "group-by",
        value_name = "TAG",
        default_value = "group",
        value_delimiter = ','
    )]
    pub group_by: Vec<String>,

    /// Requests in flight at once, each on its own connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub concurrency: u32,

    /// Timed requests of each kind.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,

    /// Untimed requests of each kind sent first.
    #[arg(long, default_value_t = 1)]
    pub warmup: u64,

    /// Also time GetStatistics, which computes exact percentiles (p25 to
    /// p99) over every point of the range. tidemark only.
    #[arg(long)]
    pub statistics: bool,
}

/// Kind of timed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Aggregate,
    Statistics,
}

/// Size of one response, for the report and as a sanity check.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    series: u64,
    buckets: u64,
    points: u64,
    p99: Option<f64>,
}

/// One worker's connection and the requests it sends.
enum Runner {
    Tidemark {
        client: QueryServiceClient<Channel>,
        aggregate: Box<AggregateRequest>,
        statistics: GetStatisticsRequest,
    },
    VictoriaMetrics {
        client: VictoriaMetrics,
        queries: Vec<String>,
        start_ns: i64,
        end_ns: i64,
        step_seconds: f64,
    },
}

impl Runner {
    async fn send(&mut self, kind: Kind) -> anyhow::Result<Outcome> {
        match (self, kind) {
            (
                Runner::Tidemark {
                    client, aggregate, ..
                },
                Kind::Aggregate,
            ) => {
                let response = client
                    .aggregate(*aggregate.clone())
                    .await
                    .map_err(|status| anyhow::anyhow!("Aggregate failed: {status}"))?
                    .into_inner();
                Ok(Outcome {
                    series: response.series.len() as u64,
                    buckets: response.series.iter().map(|s| s.buckets.len() as u64).sum(),
                    points: response.points_scanned,
                    p99: None,
                })
            }
            (
                Runner::Tidemark {
                    client, statistics, ..
                },
                Kind::Statistics,
            ) => {
                let response = client
                    .get_statistics(statistics.clone())
                    .await
                    .map_err(|status| anyhow::anyhow!("GetStatistics failed: {status}"))?
                    .into_inner();
                Ok(Outcome {
                    series: 1,
                    buckets: 1,
                    points: response.count,
                    p99: response.p99,
                })
            }
            (
                Runner::VictoriaMetrics {
                    client,
                    queries,
                    start_ns,
                    end_ns,
                    step_seconds,
                },
                Kind::Aggregate,
            ) => {
                let mut outcome = Outcome::default();
                for query in queries.iter() {
                    outcome.series += client
                        .query_range(query, *start_ns, *end_ns, *step_seconds)
                        .await? as u64;
                }
                Ok(outcome)
            }
            (Runner::VictoriaMetrics { .. }, Kind::Statistics) => {
                bail!("--statistics applies to tidemark only")
            }
        }
    }
}

async fn new_runner(args: &QueryBenchArgs, client: &ClientArgs) -> anyhow::Result<Runner> {
    let range = args.range.to_proto()?;
    let group_by: Vec<String> = args
        .group_by
        .iter()
        .filter(|key| !key.is_empty())
        .cloned()
        .collect();
    match args.target.target {
        Target::Tidemark => Ok(Runner::Tidemark {
            client: QueryServiceClient::new(open_channel(&client.addr).await?)
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            aggregate: Box::new(AggregateRequest {
                metric: args.metric.clone(),
                range,
                step: Some(to_proto_duration(args.step)),
                aggregations: args.aggregations.iter().map(|a| a.spec).collect(),
                group_by,
                ..AggregateRequest::default()
            }),
            statistics: GetStatisticsRequest {
                metric: args.metric.clone(),
                range,
                filters: Vec::new(),
            },
        }),
        Target::Victoriametrics => {
            let Some(TimeRange {
                start_unix_nano,
                end_unix_nano,
            }) = range
            else {
                bail!("--target victoriametrics needs --start and --end");
            };
            let step_seconds = args.step.as_secs_f64();
            let queries = args
                .aggregations
                .iter()
                .map(|a| aggregation_query(&a.label, &args.metric, step_seconds, &group_by))
                .collect::<anyhow::Result<Vec<String>>>()?;
            Ok(Runner::VictoriaMetrics {
                client: VictoriaMetrics::new(&args.target.vm_url)?,
                queries,
                start_ns: start_unix_nano,
                end_ns: end_unix_nano,
                step_seconds,
            })
        }
    }
}

/// Timings of one kind of request.
struct PhaseResult {
    latencies: Latencies,
    elapsed: Duration,
    last: Outcome,
}

/// Sends `args.requests` requests of `kind` from `args.concurrency`
/// workers, after `args.warmup` untimed ones.
async fn run_phase(
    args: &QueryBenchArgs,
    runners: &mut Vec<Runner>,
    kind: Kind,
) -> anyhow::Result<PhaseResult> {
    for _ in 0..args.warmup {
        runners[0].send(kind).await?;
    }

    let remaining = Arc::new(AtomicU64::new(args.requests));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for mut runner in runners.drain(..) {
        let remaining = remaining.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let mut last = Outcome::default();
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let sent = Instant::now();
                last = runner.send(kind).await?;
                latencies.record(sent.elapsed());
            }
            anyhow::Ok((runner, latencies, last))
        }));
    }

    let mut latencies = Latencies::default();
    let mut last = Outcome::default();
    for task in tasks {
        let (runner, worker_latencies, worker_last) =
            task.await.context("a query worker panicked")??;
        runners.push(runner);
        latencies.extend(worker_latencies);
        if worker_last.series > 0 {
            last = worker_last;
        }
    }
    Ok(PhaseResult {
        latencies,
        elapsed: started.elapsed(),
        last,
    })
}

fn add_phase(report: &mut Report, prefix: &str, phase: &mut PhaseResult) {
    report.latencies(&format!("{prefix}_latency"), &mut phase.latencies);
    report.number(
        &format!("{prefix}_requests_per_second"),
        per_second(phase.latencies.len() as u64, phase.elapsed),
        "requests/s",
    );
}

pub async fn run(args: QueryBenchArgs, client: &ClientArgs) -> anyhow::Result<()> {
    check_unique_labels(&args.aggregations)?;
    if args.statistics && args.target.target == Target::Victoriametrics {
        bail!(
            "--statistics applies to tidemark only; VictoriaMetrics has no exact percentile over all series of a metric"
        );
    }

    let mut runners = Vec::new();
    for _ in 0..args.concurrency {
        runners.push(new_runner(&args, client).await?);
    }

    let mut report = Report::new();
    report.text("target", args.target.target.name());
    report.text("metric", args.metric.as_str());
    let labels: Vec<&str> = args.aggregations.iter().map(|a| a.label.as_str()).collect();
    report.text("aggregations", labels.join(","));
    report.text("group_by", args.group_by.join(","));
    report.number("step_seconds", Some(args.step.as_secs_f64()), "s");
    report.count("concurrency", u64::from(args.concurrency));

    let mut aggregate = run_phase(&args, &mut runners, Kind::Aggregate).await?;
    add_phase(&mut report, "aggregate", &mut aggregate);
    report.count("aggregate_series", aggregate.last.series);
    if args.target.target == Target::Tidemark {
        report.count("aggregate_buckets", aggregate.last.buckets);
        report.count("aggregate_points_scanned", aggregate.last.points);
    }

    if args.statistics {
        let mut statistics = run_phase(&args, &mut runners, Kind::Statistics).await?;
        add_phase(&mut report, "statistics", &mut statistics);
        report.count("statistics_points", statistics.last.points);
        report.number("statistics_p99", statistics.last.p99, "");
    }

    report.print(client.output)
}
