//! `tidemark bench live`: many subscribers on the same live window
//! request while a paced ingest load writes points stamped with the
//! current time. Each FINAL update is timed against its window's close
//! (window end plus allowed lateness) on the local clock, which is the
//! server's clock when both run on one machine.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use super::DataArgs;
use super::generate::{Layout, Message, SeriesSet};
use super::ingest::open_channel;
use super::report::{Latencies, Report, per_second};
use crate::cli::ClientArgs;
use crate::cli::parse::{AggregationArg, parse_aggregation, parse_duration, to_proto_duration};
use crate::cli::query::{check_unique_labels, parse_positive_duration};
use crate::clock::now_ns;
use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::live_service_client::LiveServiceClient;
use crate::proto::v1::{
    EmitMode, StreamPointsRequest, SubscribeWindowsRequest, WindowState, window_update,
};

/// Spacing of the timestamps inside one generated run.
const RUN_SPACING_NS: i64 = 1_000;

/// Extra wait after the last window's close for its FINAL updates.
const TAIL_GRACE: Duration = Duration::from_secs(1);

/// Messages a paced stream may build ahead of its gRPC stream.
const QUEUED_MESSAGES: usize = 8;

#[derive(clap::Args, Debug, Clone)]
pub struct LiveArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Number of subscribers, all sending the same request, so the server
    /// computes one shared aggregation and copies each update to every
    /// subscriber.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub subscribers: u32,

    /// HTTP/2 connections the subscribers are spread over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// Window width.
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration)]
    pub window: Duration,

    /// Allowed lateness: a window closes this long after its end.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub lateness: Duration,

    /// Aggregation per window; repeat for more.
    #[arg(long = "agg", value_name = "NAME", default_values = ["count", "mean"], value_parser = parse_aggregation)]
    pub aggregations: Vec<AggregationArg>,

    /// Tag keys to group windows by, separated by commas.
    #[arg(long = "group-by", value_name = "TAG", value_delimiter = ',')]
    pub group_by: Vec<String>,

    /// Target ingest rate in points per second, over all streams.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub rate: u64,

    /// How long the ingest load runs.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// Concurrent StreamPoints streams of the ingest load.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub streams: u32,

    /// Points per ingest message.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub points_per_message: u32,

    /// Points of one series sent one after another inside a message.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub run_length: u32,
}

/// One FINAL update as received.
struct Received {
    start_ns: i64,
    group: String,
    delay_ns: i64,
}

/// Updates one subscriber received.
#[derive(Default)]
struct SubscriberLog {
    finals: Vec<Received>,
    gap_messages: u64,
    windows_dropped: u64,
    late_points: u64,
}

fn subscribe_request(args: &LiveArgs) -> SubscribeWindowsRequest {
    SubscribeWindowsRequest {
        metric: args.data.metric.clone(),
        filters: Vec::new(),
        group_by: args.group_by.clone(),
        window: Some(to_proto_duration(args.window)),
        slide: None,
        aggregations: args.aggregations.iter().map(|a| a.spec).collect(),
        allowed_lateness: Some(to_proto_duration(args.lateness)),
        emit: EmitMode::OnClose as i32,
        update_interval: None,
        backfill_windows: 0,
    }
}

/// Reads one subscription until `stop` turns true or the stream ends.
async fn subscriber(
    channel: Channel,
    request: SubscribeWindowsRequest,
    lateness_ns: i64,
    ready: mpsc::Sender<()>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SubscriberLog> {
    let mut client = LiveServiceClient::new(channel);
    let mut stream = client
        .subscribe_windows(request)
        .await
        .map_err(|status| anyhow::anyhow!("SubscribeWindows failed: {status}"))?
        .into_inner();
    // The response headers arrive once the server registered the
    // subscription, so no window is missed after this point.
    let _ = ready.send(()).await;
    drop(ready);

    let mut log = SubscriberLog::default();
    loop {
        let message = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            message = stream.message() => message,
        };
        let update = match message {
            Ok(Some(update)) => update,
            Ok(None) => break,
            Err(status) => bail!("the live stream failed: {status}"),
        };
        match update.kind {
            Some(window_update::Kind::Window(window))
                if window.state == WindowState::Final as i32 =>
            {
                let closed_ns = window.end_unix_nano.saturating_add(lateness_ns);
                let mut group: Vec<String> = window
                    .group
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                group.sort();
                log.finals.push(Received {
                    start_ns: window.start_unix_nano,
                    group: group.join(","),
                    delay_ns: now_ns() - closed_ns,
                });
            }
            Some(window_update::Kind::Window(_)) => {}
            Some(window_update::Kind::Gap(gap)) => {
                log.gap_messages += 1;
                log.windows_dropped += gap.windows_dropped;
            }
            Some(window_update::Kind::Heartbeat(heartbeat)) => {
                log.late_points += heartbeat.late_points;
            }
            None => {}
        }
    }
    Ok(log)
}

/// Builds messages of one ingest stream with the current time, paced to
/// `rate` points per second, until `until`. Returns the time spent
/// building and encoding messages.
async fn produce(
    mut set: SeriesSet,
    layout: Layout,
    stream: usize,
    rate: f64,
    until: Instant,
    sender: mpsc::Sender<StreamPointsRequest>,
) -> Duration {
    let owned: Vec<usize> = (stream..layout.series).step_by(layout.streams).collect();
    let mut last_time = vec![i64::MIN; layout.series];
    let mut next_owned = 0usize;
    let mut busy = Duration::ZERO;
    let started = Instant::now();
    let mut sent_points = 0u64;

    while Instant::now() < until {
        // Sleep until this message is due at the target rate.
        let due = started + Duration::from_secs_f64(sent_points as f64 / rate);
        if due > Instant::now() {
            tokio::time::sleep_until(due.into()).await;
        }

        let building = Instant::now();
        let mut message = Message::default();
        let mut room = layout.points_per_message;
        while room > 0 && !owned.is_empty() {
            let series = owned[next_owned % owned.len()];
            next_owned += 1;
            let count = room.min(layout.run_length.max(1));
            let now = now_ns();
            let times: Vec<i64> = (0..count as i64)
                .map(|k| now - (count as i64 - 1 - k) * RUN_SPACING_NS)
                .map(|time| {
                    let time = time.max(last_time[series].saturating_add(1));
                    last_time[series] = time;
                    time
                })
                .collect();
            message.runs.push(set.run(series, times));
            room -= count;
        }
        sent_points += message.point_count() as u64;
        let request = set.columnar_request(&message);
        busy += building.elapsed();

        if sender.send(request).await.is_err() {
            break;
        }
    }
    busy
}

/// Runs one paced StreamPoints stream and returns (accepted, rejected,
/// generator busy time).
async fn ingest_stream(
    channel: Channel,
    set: SeriesSet,
    layout: Layout,
    stream: usize,
    rate: f64,
    until: Instant,
) -> anyhow::Result<(u64, u64, Duration)> {
    let (sender, receiver) = mpsc::channel(QUEUED_MESSAGES);
    let producer = tokio::spawn(produce(set, layout, stream, rate, until, sender));
    let mut client = IngestServiceClient::new(channel);
    let response = client
        .stream_points(ReceiverStream::new(receiver))
        .await
        .map_err(|status| anyhow::anyhow!("StreamPoints failed: {status}"))?
        .into_inner();
    let busy = producer.await.context("an ingest producer panicked")?;
    Ok((response.accepted, response.rejected, busy))
}

pub async fn run(args: LiveArgs, client: &ClientArgs) -> anyhow::Result<()> {
    check_unique_labels(&args.aggregations)?;
    let window_ns = i64::try_from(args.window.as_nanos()).context("--window is too long")?;
    let lateness_ns = i64::try_from(args.lateness.as_nanos()).context("--lateness is too long")?;
    let series = args.data.series as usize;
    let streams = args.streams as usize;

    // Subscribe everyone before the load starts.
    let mut channels = Vec::new();
    for _ in 0..args.connections {
        channels.push(open_channel(&client.addr).await?);
    }
    let request = subscribe_request(&args);
    let (stop, stop_receiver) = watch::channel(false);
    let (ready, mut ready_receiver) = mpsc::channel(args.subscribers as usize);
    let mut subscribers = Vec::new();
    for index in 0..args.subscribers as usize {
        subscribers.push(tokio::spawn(subscriber(
            channels[index % channels.len()].clone(),
            request.clone(),
            lateness_ns,
            ready.clone(),
            stop_receiver.clone(),
        )));
    }
    drop(ready);
    let mut subscribed = 0u32;
    let subscribe_deadline = Instant::now() + Duration::from_secs(60);
    while subscribed < args.subscribers {
        match tokio::time::timeout_at(subscribe_deadline.into(), ready_receiver.recv()).await {
            Ok(Some(())) => subscribed += 1,
            Ok(None) => break,
            Err(_) => bail!(
                "only {subscribed} of {} subscribers were subscribed after 60s",
                args.subscribers
            ),
        }
    }
    if subscribed < args.subscribers {
        // A subscriber task ended early; its error explains why.
        for task in subscribers {
            task.await.context("a subscriber task panicked")??;
        }
        bail!(
            "only {subscribed} of {} subscribers were subscribed",
            args.subscribers
        );
    }

    // The paced ingest load.
    let set = SeriesSet::new(
        &args.data.metric,
        args.data.shape,
        series,
        args.data.tags_per_series as usize,
        args.data.seed,
    );
    let layout = Layout {
        series,
        total_points: u64::MAX,
        points_per_message: args.points_per_message as usize,
        run_length: args.run_length as usize,
        streams,
        start_ns: 0,
        interval_ns: 1,
    };
    let ingest_start_ns = now_ns();
    let started = Instant::now();
    let until = started + args.duration;
    let per_stream_rate = args.rate as f64 / streams as f64;
    let mut ingest_tasks = Vec::new();
    for stream in 0..streams {
        let channel = open_channel(&client.addr).await?;
        ingest_tasks.push(tokio::spawn(ingest_stream(
            channel,
            set.clone(),
            layout,
            stream,
            per_stream_rate,
            until,
        )));
    }
    let mut accepted = 0u64;
    let mut rejected = 0u64;
    let mut generator_busy = Duration::ZERO;
    for task in ingest_tasks {
        let (stream_accepted, stream_rejected, busy) =
            task.await.context("an ingest task panicked")??;
        accepted += stream_accepted;
        rejected += stream_rejected;
        generator_busy += busy;
    }
    let ingest_elapsed = started.elapsed();
    let ingest_end_ns = now_ns();

    // Wait until the last window of the load has closed and been sent.
    tokio::time::sleep(args.window + args.lateness + TAIL_GRACE).await;
    let _ = stop.send(true);
    let mut logs = Vec::new();
    for task in subscribers {
        logs.push(task.await.context("a subscriber task panicked")??);
    }

    // Only windows that lie wholly inside the load are measured.
    let first_start = ingest_start_ns.div_euclid(window_ns) * window_ns + window_ns;
    let in_load = |start_ns: i64| start_ns >= first_start && start_ns + window_ns <= ingest_end_ns;
    let mut expected: HashSet<(i64, String)> = HashSet::new();
    for log in &logs {
        for received in log.finals.iter().filter(|r| in_load(r.start_ns)) {
            expected.insert((received.start_ns, received.group.clone()));
        }
    }
    let mut delays = Latencies::default();
    let mut missing = 0u64;
    let mut duplicates = 0u64;
    for log in &logs {
        let mut seen: HashMap<(i64, &str), u32> = HashMap::new();
        for received in log.finals.iter().filter(|r| in_load(r.start_ns)) {
            delays.record_ns(u64::try_from(received.delay_ns).unwrap_or(0));
            *seen
                .entry((received.start_ns, received.group.as_str()))
                .or_default() += 1;
        }
        missing += expected.len().saturating_sub(seen.len()) as u64;
        duplicates += seen.values().map(|&n| u64::from(n - 1)).sum::<u64>();
    }
    let starts: BTreeSet<i64> = expected.iter().map(|(start, _)| *start).collect();
    let possible_starts = ((ingest_end_ns - first_start) / window_ns).max(0) as u64;
    let early = logs
        .iter()
        .flat_map(|log| &log.finals)
        .filter(|r| r.delay_ns < 0)
        .count();

    let mut report = Report::new();
    report.count("subscribers", u64::from(args.subscribers));
    report.count("connections", u64::from(args.connections));
    report.number("window_seconds", Some(args.window.as_secs_f64()), "s");
    report.number("lateness_seconds", Some(args.lateness.as_secs_f64()), "s");
    report.count("target_points_per_second", args.rate);
    report.number(
        "ingest_points_per_second",
        per_second(accepted + rejected, ingest_elapsed),
        "points/s",
    );
    report.count("points_accepted", accepted);
    report.count("points_rejected", rejected);
    report.number(
        "generator_busy_seconds",
        Some(generator_busy.as_secs_f64()),
        "s",
    );
    report.count("windows_measured", expected.len() as u64);
    report.count("window_starts_measured", starts.len() as u64);
    report.count("window_starts_in_load", possible_starts);
    report.latencies("final_delay", &mut delays);
    report.count("final_updates_before_close", early as u64);
    report.count("gap_messages", logs.iter().map(|l| l.gap_messages).sum());
    report.count(
        "windows_dropped",
        logs.iter().map(|l| l.windows_dropped).sum(),
    );
    report.count("windows_missing", missing);
    report.count("windows_duplicated", duplicates);
    report.count(
        "late_points_reported",
        logs.first().map_or(0, |log| log.late_points),
    );
    report.print(client.output)?;

    if rejected > 0 {
        bail!("the server rejected {rejected} points");
    }
    Ok(())
}
