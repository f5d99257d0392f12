//! `tidemark bench ingest`: loads pre-generated points into tidemark over
//! gRPC (StreamPoints, or WritePoints with `--unary`) or into
//! VictoriaMetrics over HTTP, and reports throughput, acknowledgement
//! latency and the time until every point is queryable.
//!
//! Messages are generated and encoded before the clock starts and sent as
//! raw bytes, so the load generator spends its time on the network and
//! not on protobuf encoding. The report gives the generation time
//! separately.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{BufMut, Bytes};
use futures::StreamExt;
use prost::Message as _;
use tonic::Request;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Channel, Endpoint};
use tonic_prost::ProstDecoder;

use super::generate::{Layout, SeriesSet};
use super::report::{Latencies, Report, per_second};
use super::vm::VictoriaMetrics;
use super::{DataArgs, Target, TargetArgs};
use crate::cli::ClientArgs;
use crate::cli::client::normalize_address;
use crate::cli::output::Cell;
use crate::cli::parse::parse_duration;
use crate::cli::query::parse_positive_duration;
use crate::proto::v1::query_service_client::QueryServiceClient;
use crate::proto::v1::{
    AggregateRequest, Aggregation, AggregationSpec, StreamPointsResponse, TimeRange,
    WritePointsResponse,
};

const STREAM_POINTS_PATH: &str = "/tidemark.v1.IngestService/StreamPoints";
const WRITE_POINTS_PATH: &str = "/tidemark.v1.IngestService/WritePoints";

/// Request encoding for tidemark.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// One SeriesPoints per run of a series: tags once, then arrays.
    Columnar,
    /// One Point per point, each with its metric name and tags.
    Points,
}

impl WireFormat {
    fn name(self) -> &'static str {
        match self {
            WireFormat::Columnar => "columnar",
            WireFormat::Points => "points",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct IngestArgs {
    #[command(flatten)]
    pub target: TargetArgs,

    #[command(flatten)]
    pub data: DataArgs,

    /// Total points to send. They are generated before the clock starts.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub points: u64,

    /// Stop sending after this long even if points remain, such as 30s.
    #[arg(long, value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,

    /// Points per request message (tidemark) or per HTTP request
    /// (VictoriaMetrics).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub points_per_message: u32,

    /// Points of one series sent one after another inside a message; a
    /// message of 1000 points with runs of 100 carries 10 series.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub run_length: u32,

    /// Concurrent connections, each with one StreamPoints stream (or a
    /// sequence of WritePoints calls, or of HTTP requests). Each owns an
    /// equal share of the series.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub streams: u32,

    /// Request encoding for tidemark; VictoriaMetrics always gets JSON
    /// lines.
    #[arg(long, value_enum, default_value = "columnar")]
    pub format: WireFormat,

    /// Send each message as a WritePoints call instead of on a stream, to
    /// measure the acknowledgement latency of every message.
    #[arg(long)]
    pub unary: bool,

    /// After the last acknowledgement, poll a count query until it
    /// returns every point, and report how long that took.
    #[arg(long)]
    pub wait_queryable: bool,

    /// Give up waiting for the points to become queryable after this long.
    #[arg(long, default_value = "10m", value_parser = parse_positive_duration)]
    pub queryable_timeout: Duration,

    /// Pause between two count queries of --wait-queryable.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

/// One encoded request and the points it carries.
#[derive(Clone)]
struct EncodedMessage {
    body: Bytes,
    points: u64,
}

/// Counts and acknowledgement latencies of one connection.
#[derive(Default)]
struct StreamResult {
    accepted: u64,
    rejected: u64,
    bytes: u64,
    elapsed: Duration,
    acks: Latencies,
    first_errors: Vec<String>,
}

/// Codec that sends request messages already encoded as protobuf bytes
/// and decodes the response with prost.
struct RawRequestCodec<R>(PhantomData<R>);

impl<R> Default for RawRequestCodec<R> {
    fn default() -> Self {
        RawRequestCodec(PhantomData)
    }
}

struct RawEncoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl<R: prost::Message + Default + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = RawEncoder;
    type Decoder = ProstDecoder<R>;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<R> {
        ProstDecoder::default()
    }
}

/// Opens one HTTP/2 connection to a tidemark server.
pub async fn open_channel(address: &str) -> anyhow::Result<Channel> {
    let address = normalize_address(address).map_err(|error| anyhow::anyhow!(error))?;
    Endpoint::from_shared(address.clone())
        .with_context(|| format!("invalid server address {address:?}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| {
            format!("failed to connect to the tidemark server at {address}; start one with `tidemark serve`")
        })
}

/// Generates and encodes the messages of every stream, one thread per
/// stream.
fn generate_messages(
    args: &IngestArgs,
    layout: &Layout,
    set: &SeriesSet,
) -> Vec<Vec<EncodedMessage>> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..layout.streams)
            .map(|stream| {
                let mut set = set.clone();
                scope.spawn(move || {
                    let mut messages = Vec::new();
                    let encoder = set.clone();
                    layout.generate_stream(&mut set, stream, |message| {
                        let points = message.point_count() as u64;
                        let body = match (args.target.target, args.format) {
                            (Target::Victoriametrics, _) => {
                                Bytes::from(encoder.victoria_metrics_lines(&message))
                            }
                            (Target::Tidemark, WireFormat::Columnar) => {
                                Bytes::from(encoder.columnar_request(&message).encode_to_vec())
                            }
                            (Target::Tidemark, WireFormat::Points) => {
                                Bytes::from(encoder.points_request(&message).encode_to_vec())
                            }
                        };
                        messages.push(EncodedMessage { body, points });
                    });
                    messages
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a generator thread panicked"))
            .collect()
    })
}

/// Sends every message on one StreamPoints stream.
async fn send_stream(
    channel: Channel,
    messages: Vec<EncodedMessage>,
    deadline: Instant,
) -> anyhow::Result<StreamResult> {
    // Counts only the messages the stream actually yields before the
    // deadline.
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let counter = sent_bytes.clone();
    let started = Instant::now();
    let stream = futures::stream::iter(messages)
        .take_while(move |_| std::future::ready(Instant::now() < deadline))
        .map(move |message| {
            counter.fetch_add(message.body.len() as u64, Ordering::Relaxed);
            message.body
        });
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .context("the connection to the server is not ready")?;
    let response = grpc
        .client_streaming(
            Request::new(stream),
            PathAndQuery::from_static(STREAM_POINTS_PATH),
            RawRequestCodec::<StreamPointsResponse>::default(),
        )
        .await
        .map_err(|status| anyhow::anyhow!("StreamPoints failed: {status}"))?
        .into_inner();
    Ok(StreamResult {
        accepted: response.accepted,
        rejected: response.rejected,
        bytes: sent_bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        acks: Latencies::default(),
        first_errors: response.errors.into_iter().map(|e| e.reason).collect(),
    })
}

/// Sends every message as its own WritePoints call and times each one.
async fn send_unary(
    channel: Channel,
    messages: Vec<EncodedMessage>,
    deadline: Instant,
) -> anyhow::Result<StreamResult> {
    let mut result = StreamResult::default();
    let started = Instant::now();
    let mut grpc = tonic::client::Grpc::new(channel);
    for message in messages {
        if Instant::now() >= deadline {
            break;
        }
        grpc.ready()
            .await
            .context("the connection to the server is not ready")?;
        let sent = Instant::now();
        result.bytes += message.body.len() as u64;
        let response: WritePointsResponse = grpc
            .unary(
                Request::new(message.body),
                PathAndQuery::from_static(WRITE_POINTS_PATH),
                RawRequestCodec::<WritePointsResponse>::default(),
            )
            .await
            .map_err(|status| anyhow::anyhow!("WritePoints failed: {status}"))?
            .into_inner();
        result.acks.record(sent.elapsed());
        result.accepted += response.accepted;
        result.rejected += response.rejected;
        if result.first_errors.len() < 10 {
            result
                .first_errors
                .extend(response.errors.into_iter().map(|e| e.reason).take(10));
        }
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Sends every message as one `/api/v1/import` request and times each.
async fn send_victoria_metrics(
    client: VictoriaMetrics,
    messages: Vec<EncodedMessage>,
    deadline: Instant,
) -> anyhow::Result<StreamResult> {
    let mut result = StreamResult::default();
    let started = Instant::now();
    for message in messages {
        if Instant::now() >= deadline {
            break;
        }
        let sent = Instant::now();
        result.bytes += message.body.len() as u64;
        client.import(message.body).await?;
        result.acks.record(sent.elapsed());
        // VictoriaMetrics acknowledges a request without per-row counts.
        result.accepted += message.points;
    }
    result.elapsed = started.elapsed();
    Ok(result)
}

/// Counts the points of the metric in `range` with one Aggregate COUNT
/// call whose one-day buckets cover the range.
async fn count_tidemark(
    client: &mut QueryServiceClient<Channel>,
    metric: &str,
    start_ns: i64,
    end_ns: i64,
) -> anyhow::Result<u64> {
    let request = AggregateRequest {
        metric: metric.to_owned(),
        range: Some(TimeRange {
            start_unix_nano: start_ns,
            end_unix_nano: end_ns,
        }),
        step: Some(prost_types::Duration {
            seconds: 86_400,
            nanos: 0,
        }),
        aggregations: vec![AggregationSpec {
            function: Aggregation::Count as i32,
            percentile: 0.0,
        }],
        ..AggregateRequest::default()
    };
    match client.aggregate(request).await {
        Ok(response) => Ok(response
            .into_inner()
            .series
            .iter()
            .flat_map(|series| &series.buckets)
            .map(|bucket| bucket.count)
            .sum()),
        // The metric does not exist until its first point is applied.
        Err(status) if status.code() == tonic::Code::NotFound => Ok(0),
        Err(status) => Err(anyhow::anyhow!("Aggregate COUNT failed: {status}")),
    }
}

/// Polls the target until it counts at least `expected` points and
/// returns how long that took, or fails after `timeout`.
async fn wait_until_queryable(
    args: &IngestArgs,
    client: &ClientArgs,
    layout: &Layout,
    expected: u64,
) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let metric = &args.data.metric;
    let mut polls = 0u64;
    let mut tidemark = match args.target.target {
        Target::Tidemark => Some(
            QueryServiceClient::new(open_channel(&client.addr).await?)
                .max_decoding_message_size(64 * 1024 * 1024),
        ),
        Target::Victoriametrics => None,
    };
    let vm = VictoriaMetrics::new(&args.target.vm_url)?;
    loop {
        polls += 1;
        let count = match tidemark.as_mut() {
            Some(query) => count_tidemark(query, metric, layout.start_ns, layout.end_ns()).await?,
            None => {
                vm.count_points(metric, layout.start_ns, layout.end_ns())
                    .await?
            }
        };
        if count >= expected {
            return Ok((started.elapsed(), polls));
        }
        if started.elapsed() >= args.queryable_timeout {
            bail!(
                "only {count} of {expected} points were queryable after {:?}; raise --queryable-timeout",
                args.queryable_timeout
            );
        }
        tokio::time::sleep(args.poll_interval).await;
    }
}

pub async fn run(args: IngestArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let streams = args.streams as usize;
    let series = args.data.series as usize;
    let interval_ns = i64::try_from(args.data.interval.as_nanos())
        .context("--interval is too long")?
        .max(1);
    let points_per_series = args.points.div_ceil(series as u64);
    let span_ns = (points_per_series as i64).saturating_mul(interval_ns);
    let start_ns = args.data.start_ns(span_ns);
    let layout = Layout {
        series,
        total_points: args.points,
        points_per_message: args.points_per_message as usize,
        run_length: args.run_length as usize,
        streams,
        start_ns,
        interval_ns,
    };
    if args.target.target == Target::Victoriametrics && args.unary {
        bail!("--unary applies to tidemark only; VictoriaMetrics requests are always unary");
    }
    args.data.warn_about_span(span_ns);

    let set = SeriesSet::new(
        &args.data.metric,
        args.data.shape,
        series,
        args.data.tags_per_series as usize,
        args.data.seed,
    );
    let generation_started = Instant::now();
    let per_stream = generate_messages(&args, &layout, &set);
    let generation = generation_started.elapsed();
    let encoded_bytes: u64 = per_stream
        .iter()
        .flatten()
        .map(|m| m.body.len() as u64)
        .sum();

    // Connect every stream before the clock starts.
    let mut channels = Vec::new();
    if args.target.target == Target::Tidemark {
        for _ in 0..streams {
            channels.push(open_channel(&client.addr).await?);
        }
    }
    let vm = VictoriaMetrics::new(&args.target.vm_url)?;

    let started = Instant::now();
    let deadline = args
        .duration
        .map_or(started + Duration::from_secs(365 * 86_400), |d| started + d);
    let mut tasks = Vec::new();
    for (index, messages) in per_stream.into_iter().enumerate() {
        let task = match args.target.target {
            Target::Tidemark if args.unary => {
                tokio::spawn(send_unary(channels[index].clone(), messages, deadline))
            }
            Target::Tidemark => {
                tokio::spawn(send_stream(channels[index].clone(), messages, deadline))
            }
            Target::Victoriametrics => {
                tokio::spawn(send_victoria_metrics(vm.clone(), messages, deadline))
            }
        };
        tasks.push(task);
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.context("an ingest task panicked")??);
    }
    let elapsed = started.elapsed();

    let accepted: u64 = results.iter().map(|r| r.accepted).sum();
    let rejected: u64 = results.iter().map(|r| r.rejected).sum();
    let sent_bytes: u64 = results.iter().map(|r| r.bytes).sum();
    let mut acks = Latencies::default();
    let mut stream_rates: Vec<f64> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for result in results {
        stream_rates
            .push(per_second(result.accepted + result.rejected, result.elapsed).unwrap_or(0.0));
        acks.extend(result.acks);
        errors.extend(result.first_errors);
    }
    stream_rates.sort_by(f64::total_cmp);

    let mut report = Report::new();
    report.text("target", args.target.target.name());
    report.text(
        "format",
        match args.target.target {
            Target::Tidemark => args.format.name(),
            Target::Victoriametrics => "json-lines",
        },
    );
    let mode = match args.target.target {
        Target::Victoriametrics => "http",
        Target::Tidemark if args.unary => "unary",
        Target::Tidemark => "stream",
    };
    report.text("mode", mode);
    report.text("shape", args.data.shape.name());
    report.text("metric", args.data.metric.as_str());
    report.count("series", series as u64);
    report.count("streams", streams as u64);
    report.count("points_per_message", u64::from(args.points_per_message));
    report.number("generation_seconds", Some(generation.as_secs_f64()), "s");
    report.number(
        "encoded_bytes_per_point",
        Some(encoded_bytes as f64 / args.points as f64),
        "B",
    );
    report.count("points_accepted", accepted);
    report.count("points_rejected", rejected);
    report.number("seconds", Some(elapsed.as_secs_f64()), "s");
    report.number(
        "points_per_second",
        per_second(accepted + rejected, elapsed),
        "points/s",
    );
    report.number(
        "megabytes_per_second",
        per_second(sent_bytes, elapsed).map(|b| b / 1e6),
        "MB/s",
    );
    report.number(
        "stream_points_per_second_min",
        stream_rates.first().copied(),
        "points/s",
    );
    report.number(
        "stream_points_per_second_median",
        stream_rates.get(stream_rates.len() / 2).copied(),
        "points/s",
    );
    report.number(
        "stream_points_per_second_max",
        stream_rates.last().copied(),
        "points/s",
    );
    if !acks.is_empty() {
        report.latencies("ack_latency", &mut acks);
    }
    report.add("start_unix_nano", Cell::Int(layout.start_ns), "ns");
    report.add("end_unix_nano", Cell::Int(layout.end_ns()), "ns");

    if args.wait_queryable {
        let expected = accepted;
        let (waited, polls) = wait_until_queryable(&args, client, &layout, expected).await?;
        report.number("queryable_after_seconds", Some(waited.as_secs_f64()), "s");
        report.count("queryable_polls", polls);
    }

    report.print(client.output)?;
    for error in errors.iter().take(5) {
        eprintln!("warning: rejected point: {error}");
    }
    if rejected > 0 {
        bail!("the server rejected {rejected} points; see the warnings above");
    }
    Ok(())
}
