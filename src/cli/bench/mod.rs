//! `tidemark bench`: load generators that drive a running server and
//! print throughput and latency figures.
//!
//! - [`ingest`]: pre-generated points over StreamPoints or WritePoints,
//!   or into VictoriaMetrics for comparison.
//! - [`query`]: concurrent Aggregate and GetStatistics calls, or the
//!   matching VictoriaMetrics range queries.
//! - [`live`]: many live-window subscribers under a paced ingest load,
//!   timing each FINAL update against its window's close.
//!
//! The points come from [`generate`], which is deterministic, so the same
//! flags produce the same points for both targets. Results print as a
//! measure/value table, or as one JSON object with `--output json`.

pub mod generate;
pub mod ingest;
pub mod live;
pub mod query;
pub mod report;
pub mod vm;

use std::time::Duration;

use generate::Shape;

use super::ClientArgs;
use super::parse::parse_time_arg;
use super::query::parse_positive_duration;
use crate::clock::now_ns;

/// Timestamps within this distance of the present are hidden from
/// VictoriaMetrics queries by default (its `-search.latencyOffset` is
/// 30s), so generated history ends at least this long before now.
const HISTORY_END_BEFORE_NOW: Duration = Duration::from_secs(3600);

/// Spans longer than this may lose points to retention: tidemark keeps
/// most metrics 30 days and VictoriaMetrics one month by default.
const LONGEST_SAFE_SPAN: Duration = Duration::from_secs(25 * 86_400);

const MINUTE_NS: i64 = 60_000_000_000;

/// Benchmark workloads.
#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// Load points as fast as the target takes them and report points/s,
    /// acknowledgement latency and time until queryable.
    Ingest(ingest::IngestArgs),
    /// Run aggregation queries concurrently and report their latency.
    Query(query::QueryBenchArgs),
    /// Subscribe many clients to live windows under an ingest load and
    /// report how long after each window's close its FINAL update arrives.
    Live(live::LiveArgs),
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// System under test.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A tidemark server at --addr.
    Tidemark,
    /// A VictoriaMetrics single-node server at --vm-url.
    Victoriametrics,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Tidemark => "tidemark",
            Target::Victoriametrics => "victoriametrics",
        }
    }
}

/// Server selection of a benchmark.
#[derive(clap::Args, Debug, Clone)]
pub struct TargetArgs {
    /// System under test.
    #[arg(long, value_enum, default_value = "tidemark")]
    pub target: Target,

    /// Base URL of VictoriaMetrics, with --target victoriametrics.
    #[arg(long, default_value = "http://127.0.0.1:8428")]
    pub vm_url: String,
}

/// The generated series and their values.
#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Metric to write.
    #[arg(long, default_value = "bench_points")]
    pub metric: String,

    /// Number of series. Tags: `host` (unique), `group` (10 values), then
    /// `tag2`, `tag3`, ... (100 values each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub series: u32,

    /// Tags per series, at least 1.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub tags_per_series: u32,

    /// Value pattern.
    #[arg(long, value_enum, default_value = "gauge")]
    pub shape: Shape,

    /// Time between two points of one series.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub interval: Duration,

    /// Time of each series' first point: RFC 3339, nanoseconds since the
    /// epoch, or relative such as -2d. Default: the minute that makes the
    /// last point land about an hour before now.
    #[arg(long, value_parser = parse_time_arg, allow_hyphen_values = true)]
    pub start_time: Option<i64>,

    /// Seed of the value generators; equal seeds give equal points.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

impl DataArgs {
    /// Returns the first point's time for data spanning `span_ns`.
    pub fn start_ns(&self, span_ns: i64) -> i64 {
        if let Some(start) = self.start_time {
            return start;
        }
        let end = now_ns() - HISTORY_END_BEFORE_NOW.as_nanos() as i64;
        let start = end.saturating_sub(span_ns);
        start - start.rem_euclid(MINUTE_NS)
    }

    /// Warns when the data reaches so far back that retention may delete
    /// part of it.
    pub fn warn_about_span(&self, span_ns: i64) {
        if span_ns > LONGEST_SAFE_SPAN.as_nanos() as i64 {
            eprintln!(
                "warning: the points span {:.1} days; retention (30 days in tidemark, one month in VictoriaMetrics by default) may delete the oldest. Use more --series or a shorter --interval",
                span_ns as f64 / 86_400e9
            );
        }
    }
}

/// Runs one benchmark.
pub async fn run(args: BenchArgs, client: &ClientArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Ingest(command) => ingest::run(command, client).await,
        BenchCommand::Query(command) => query::run(command, client).await,
        BenchCommand::Live(command) => live::run(command, client).await,
    }
}
