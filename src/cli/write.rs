//! The `write` command: reads points from stdin and streams them to
//! `IngestService.StreamPoints` in batches.
//!
//! A reader thread parses stdin and hands finished request messages to the
//! gRPC stream through a bounded channel, so input of any length is sent
//! while it is read. The thread records the input line of every point in
//! stream order, which maps each rejection's `PointError.index` back to
//! its line.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::mem::discriminant;

use anyhow::{anyhow, bail};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::clock;
use crate::proto::v1::{Point, SeriesPoints, StreamPointsRequest, StreamPointsResponse, point};

use super::ClientArgs;
use super::client::{Connection, connect};
use super::input::{InputFormat, ParsedLine, PointDefaults, PointParser};
use super::output::{Cell, Table, print_table};

/// Problems (unparseable lines and rejected points) listed on stderr; the
/// rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 20;

/// Largest estimated encoded size of one request message. The server
/// decodes messages of up to 16 MiB by default, and a quarter of that
/// leaves room for points that are larger than estimated.
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Request messages the reader thread may parse ahead of the gRPC stream.
const QUEUED_BATCHES: usize = 4;

#[derive(clap::Args, Debug, Clone)]
pub struct WriteArgs {
    /// Format of stdin. Default: JSON lines when the first non-empty line
    /// starts with `{`, CSV otherwise.
    #[arg(long, value_enum)]
    pub format: Option<InputFormat>,

    /// Metric of points whose line has no metric or an empty one.
    #[arg(long)]
    pub metric: Option<String>,

    /// Maximum number of points per request message.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
}

/// A parsed point and the input line it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct InputPoint {
    pub line: u64,
    pub point: Point,
}

/// Collects points into batches of at most `max_points` points and about
/// `max_bytes` encoded bytes. A single point larger than `max_bytes`
/// becomes a batch of its own.
#[derive(Debug)]
pub struct Batcher {
    max_points: usize,
    max_bytes: usize,
    pending: Vec<InputPoint>,
    pending_bytes: usize,
}

impl Batcher {
    pub fn new(max_points: usize, max_bytes: usize) -> Batcher {
        Batcher {
            max_points: max_points.max(1),
            max_bytes,
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// Adds a point and returns the batches it completed, at most two.
    pub fn push(&mut self, point: InputPoint) -> Vec<Vec<InputPoint>> {
        let mut done = Vec::new();
        let size = point.point.encoded_len();
        if !self.pending.is_empty() && self.pending_bytes + size > self.max_bytes {
            done.push(self.take());
        }
        self.pending.push(point);
        self.pending_bytes += size;
        if self.pending.len() >= self.max_points {
            done.push(self.take());
        }
        done
    }

    /// Returns the remaining points, if any, as a last batch.
    pub fn finish(&mut self) -> Option<Vec<InputPoint>> {
        if self.pending.is_empty() {
            None
        } else {
            Some(self.take())
        }
    }

    fn take(&mut self) -> Vec<InputPoint> {
        self.pending_bytes = 0;
        std::mem::take(&mut self.pending)
    }
}

/// Series key: metric name and tags sorted by key.
type SeriesKey = (String, Vec<(String, String)>);

fn series_key(point: &Point) -> SeriesKey {
    let mut tags: Vec<(String, String)> = point
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    tags.sort();
    (point.metric.clone(), tags)
}

/// Builds one request message from points in input order, and returns it
/// with the input line of each point in message order, which is the order
/// that `PointError.index` counts: `points` first, then each series.
///
/// Points of one series go into a `SeriesPoints` when there are at least
/// two and all values have the same kind, because a series carries one
/// value array. Otherwise they stay single `points`. Either way the points
/// of one series keep their input order.
pub fn build_request(points: Vec<InputPoint>) -> (StreamPointsRequest, Vec<u64>) {
    let mut groups: Vec<Vec<InputPoint>> = Vec::new();
    let mut group_of_series: HashMap<SeriesKey, usize> = HashMap::new();
    for point in points {
        let next = groups.len();
        let group = *group_of_series
            .entry(series_key(&point.point))
            .or_insert(next);
        if group == next {
            groups.push(Vec::new());
        }
        groups[group].push(point);
    }

    let mut request = StreamPointsRequest::default();
    let mut point_lines = Vec::new();
    let mut series_lines = Vec::new();
    for group in groups {
        if group.len() >= 2 && has_one_value_kind(&group) {
            series_lines.extend(group.iter().map(|p| p.line));
            request.series.push(into_series(group));
        } else {
            for input in group {
                point_lines.push(input.line);
                request.points.push(input.point);
            }
        }
    }
    point_lines.extend(series_lines);
    (request, point_lines)
}

fn has_one_value_kind(group: &[InputPoint]) -> bool {
    let Some(first) = group[0].point.value.as_ref() else {
        return false;
    };
    group.iter().all(|input| match &input.point.value {
        Some(value) => discriminant(value) == discriminant(first),
        None => false,
    })
}

/// Converts points of one series whose values share one kind into the
/// columnar form.
fn into_series(group: Vec<InputPoint>) -> SeriesPoints {
    let mut series = SeriesPoints {
        metric: group[0].point.metric.clone(),
        tags: group[0].point.tags.clone(),
        ..SeriesPoints::default()
    };
    for input in group {
        series.times_unix_nano.push(input.point.time_unix_nano);
        match input.point.value {
            Some(point::Value::DoubleValue(v)) => series.double_values.push(v),
            Some(point::Value::IntValue(v)) => series.int_values.push(v),
            Some(point::Value::BoolValue(v)) => series.bool_values.push(v),
            Some(point::Value::StringValue(v)) => series.string_values.push(v),
            None => unreachable!("has_one_value_kind rejects points without a value"),
        }
    }
    series
}

/// Settings of one run of the reader.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub format: Option<InputFormat>,
    pub default_metric: Option<String>,
    pub batch_size: usize,
    pub max_batch_bytes: usize,
}

/// Summary of one reader run, returned when the reader stops.
#[derive(Debug, Default)]
pub struct ReadOutcome {
    /// Input line of each point sent, in stream order.
    pub line_of_point: Vec<u64>,
    /// Number of lines that were not valid points.
    pub invalid_lines: u64,
    /// The first [`MAX_LISTED_PROBLEMS`] invalid lines and their problems.
    pub listed_invalid: Vec<(u64, String)>,
    /// Problem that stopped reading early, such as an invalid CSV header.
    pub fatal: Option<String>,
}

/// Reads and parses lines, calls `send` with each finished request message
/// and `warn` with each warning about the input, such as times that look
/// like seconds. Stops at the end of input, on a fatal input problem, or
/// when `send` returns false because the stream is gone.
pub fn read_points(
    mut reader: impl BufRead,
    options: &ReadOptions,
    mut send: impl FnMut(StreamPointsRequest) -> bool,
    mut warn: impl FnMut(&str),
) -> ReadOutcome {
    let mut outcome = ReadOutcome::default();
    let mut parser = PointParser::new(
        options.format,
        PointDefaults {
            metric: options.default_metric.clone(),
            now_ns: clock::now_ns(),
        },
    );
    let mut batcher = Batcher::new(options.batch_size, options.max_batch_bytes);
    let mut send_batch = |batch: Vec<InputPoint>, outcome: &mut ReadOutcome| {
        let (request, lines) = build_request(batch);
        outcome.line_of_point.extend(lines);
        send(request)
    };

    let mut buffer = Vec::new();
    let mut line_number: u64 = 0;
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                outcome.fatal = Some(format!(
                    "failed to read stdin after line {line_number}: {err}"
                ));
                break;
            }
        }
        line_number += 1;

        let parsed = match std::str::from_utf8(&buffer) {
            Ok(text) => {
                // A line without a time means "now", so the clock is read per line.
                parser.set_now(clock::now_ns());
                let text = text.strip_suffix('\n').unwrap_or(text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                let parsed = match parser.parse_line(text) {
                    Ok(parsed) => parsed,
                    Err(problem) => {
                        outcome.fatal = Some(format!("line {line_number}: {problem}"));
                        break;
                    }
                };
                if let Some(warning) = parser.take_warning() {
                    warn(&format!("warning: line {line_number}: {warning}"));
                }
                parsed
            }
            Err(_) => ParsedLine::Invalid("the line is not valid UTF-8".to_owned()),
        };

        match parsed {
            ParsedLine::Skipped => {}
            ParsedLine::Invalid(problem) => {
                outcome.invalid_lines += 1;
                if outcome.listed_invalid.len() < MAX_LISTED_PROBLEMS {
                    outcome.listed_invalid.push((line_number, problem));
                }
            }
            ParsedLine::Point(point) => {
                let input = InputPoint {
                    line: line_number,
                    point,
                };
                for batch in batcher.push(input) {
                    if !send_batch(batch, &mut outcome) {
                        return outcome;
                    }
                }
            }
        }
    }

    if let Some(batch) = batcher.finish() {
        send_batch(batch, &mut outcome);
    }
    outcome
}

/// Result of a whole write, ready to print.
#[derive(Debug, PartialEq)]
pub struct WriteReport {
    pub accepted: u64,
    pub rejected: u64,
    pub invalid_lines: u64,
    /// The first problems by input line: the line (`None` when the server
    /// named a point the client did not send) and the message.
    pub listed: Vec<(Option<u64>, String)>,
    /// Problems counted but not listed.
    pub unlisted: u64,
}

impl WriteReport {
    /// Merges the reader's invalid lines with the server's rejections,
    /// mapping each rejection to its input line.
    pub fn new(response: &StreamPointsResponse, outcome: &ReadOutcome) -> WriteReport {
        let mut problems: Vec<(Option<u64>, String)> = outcome
            .listed_invalid
            .iter()
            .map(|(line, problem)| (Some(*line), format!("invalid: {problem}")))
            .collect();
        for error in &response.errors {
            let line = usize::try_from(error.index)
                .ok()
                .and_then(|index| outcome.line_of_point.get(index).copied());
            let message = match line {
                Some(_) => format!("rejected: {}", error.reason),
                None => format!(
                    "rejected point #{} of the stream: {}",
                    error.index, error.reason
                ),
            };
            problems.push((line, message));
        }
        problems.sort_by_key(|(line, _)| line.unwrap_or(u64::MAX));

        let total = outcome.invalid_lines + response.rejected;
        problems.truncate(MAX_LISTED_PROBLEMS);
        let unlisted = total.saturating_sub(problems.len() as u64);
        WriteReport {
            accepted: response.accepted,
            rejected: response.rejected,
            invalid_lines: outcome.invalid_lines,
            listed: problems,
            unlisted,
        }
    }

    /// Lines for stderr: one per listed problem, and a count of the rest.
    pub fn problem_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .listed
            .iter()
            .map(|(line, message)| match line {
                Some(line) => format!("line {line}: {message}"),
                None => message.clone(),
            })
            .collect();
        if self.unlisted > 0 {
            lines.push(format!(
                "... and {} more problems not listed",
                self.unlisted
            ));
        }
        lines
    }

    pub fn summary_table(&self) -> Table {
        let mut table = Table::new(["accepted", "rejected", "invalid_lines"]);
        table.push(vec![
            Cell::UInt(self.accepted),
            Cell::UInt(self.rejected),
            Cell::UInt(self.invalid_lines),
        ]);
        table
    }

    /// Returns an error when any point was not written.
    pub fn to_result(&self) -> anyhow::Result<()> {
        let mut parts = Vec::new();
        if self.rejected > 0 {
            parts.push(format!(
                "{} rejected by the server",
                count_of(self.rejected, "point", "points")
            ));
        }
        if self.invalid_lines > 0 {
            parts.push(format!(
                "{} that could not be parsed",
                count_of(self.invalid_lines, "line", "lines")
            ));
        }
        if parts.is_empty() {
            return Ok(());
        }
        bail!(
            "write incomplete: {}; the lines listed above were not written, all other points were",
            parts.join(" and ")
        )
    }
}

/// Formats a count with the singular or plural noun.
fn count_of(count: u64, singular: &str, plural: &str) -> String {
    if count == 1 {
        format!("1 {singular}")
    } else {
        format!("{count} {plural}")
    }
}

/// Streams the points read from `reader` to the server and returns the
/// server's response with what the reader saw.
pub async fn stream_points<R: BufRead + Send + 'static>(
    connection: &Connection,
    reader: R,
    options: ReadOptions,
) -> anyhow::Result<(StreamPointsResponse, ReadOutcome)> {
    let (sender, receiver) = mpsc::channel(QUEUED_BATCHES);
    // A plain thread, not spawn_blocking, so that a reader still blocked on
    // an idle stdin does not keep the runtime from shutting down after an
    // error.
    let reader_thread = std::thread::spawn(move || {
        read_points(
            reader,
            &options,
            |request| sender.blocking_send(request).is_ok(),
            |warning| eprintln!("{warning}"),
        )
    });

    let response = connection
        .ingest()
        .stream_points(ReceiverStream::new(receiver))
        .await
        .map_err(|status| connection.status_error("StreamPoints", status))?
        .into_inner();

    // The stream has ended, so the reader has dropped its sender and is
    // about to return.
    let outcome = tokio::task::spawn_blocking(move || reader_thread.join())
        .await
        .map_err(|err| anyhow!("the stdin reader task failed: {err}"))?
        .map_err(|_| anyhow!("the stdin reader thread panicked"))?;
    Ok((response, outcome))
}

pub async fn run(args: WriteArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let connection = connect(&client.addr).await?;
    let options = ReadOptions {
        format: args.format,
        default_metric: args.metric,
        batch_size: args.batch_size as usize,
        max_batch_bytes: MAX_BATCH_BYTES,
    };
    if io::stdin().is_terminal() {
        eprintln!("reading points from stdin as CSV or JSON lines; end the input with Ctrl-D");
    }
    let (response, outcome) =
        stream_points(&connection, BufReader::new(io::stdin()), options).await?;

    let report = WriteReport::new(&response, &outcome);
    for line in report.problem_lines() {
        eprintln!("{line}");
    }
    if let Some(fatal) = &outcome.fatal {
        if report.accepted == 0 {
            bail!("{fatal}; no points were written");
        }
        bail!(
            "{fatal}; stopped reading there after {} had been written",
            count_of(report.accepted, "point", "points")
        );
    }
    if outcome.line_of_point.is_empty() && outcome.invalid_lines == 0 {
        eprintln!("note: stdin contained no points");
    }
    print_table(&report.summary_table(), client.output)?;
    report.to_result()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::sync::{Arc, Mutex};

    use tokio_stream::StreamExt;
    use tokio_stream::wrappers::TcpListenerStream;
    use tonic::{Request, Response, Status, Streaming};

    use super::*;
    use crate::proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
    use crate::proto::v1::{PointError, WritePointsRequest, WritePointsResponse};

    fn input(line: u64, metric: &str, host: &str, value: point::Value) -> InputPoint {
        InputPoint {
            line,
            point: Point {
                metric: metric.into(),
                time_unix_nano: line as i64,
                value: Some(value),
                tags: HashMap::from([("host".to_owned(), host.to_owned())]),
            },
        }
    }

    #[test]
    fn request_groups_series() {
        let points = vec![
            input(1, "cpu", "a", point::Value::DoubleValue(1.0)),
            input(2, "cpu", "b", point::Value::DoubleValue(2.0)),
            input(3, "cpu", "a", point::Value::DoubleValue(3.0)),
            input(5, "mem", "a", point::Value::IntValue(4)),
        ];
        let (request, lines) = build_request(points);

        assert_eq!(request.points.len(), 2, "single points of cpu/b and mem/a");
        assert_eq!(request.points[0].time_unix_nano, 2);
        assert_eq!(request.points[1].time_unix_nano, 5);
        assert_eq!(request.series.len(), 1);
        assert_eq!(request.series[0].metric, "cpu");
        assert_eq!(request.series[0].times_unix_nano, vec![1, 3]);
        assert_eq!(request.series[0].double_values, vec![1.0, 3.0]);
        assert!(request.series[0].int_values.is_empty());
        assert_eq!(lines, vec![2, 5, 1, 3]);
    }

    #[test]
    fn request_mixed_kinds_stay_points() {
        let points = vec![
            input(1, "cpu", "a", point::Value::DoubleValue(1.0)),
            input(2, "cpu", "a", point::Value::IntValue(2)),
        ];
        let (request, lines) = build_request(points);
        assert!(request.series.is_empty());
        assert_eq!(request.points.len(), 2);
        assert_eq!(lines, vec![1, 2]);
    }

    #[test]
    fn request_series_of_each_kind() {
        let kinds = [
            (point::Value::IntValue(1), point::Value::IntValue(2)),
            (
                point::Value::BoolValue(true),
                point::Value::BoolValue(false),
            ),
            (
                point::Value::StringValue("x".into()),
                point::Value::StringValue("y".into()),
            ),
        ];
        for (first, second) in kinds {
            let (request, _) =
                build_request(vec![input(1, "m", "a", first), input(2, "m", "a", second)]);
            let series = &request.series[0];
            let lengths = [
                series.double_values.len(),
                series.int_values.len(),
                series.bool_values.len(),
                series.string_values.len(),
            ];
            assert_eq!(lengths.iter().sum::<usize>(), 2, "{series:?}");
            assert_eq!(lengths.iter().filter(|n| **n > 0).count(), 1, "{series:?}");
        }
    }

    #[test]
    fn batcher_splits_by_count() {
        let mut batcher = Batcher::new(2, usize::MAX);
        assert!(
            batcher
                .push(input(1, "m", "a", point::Value::IntValue(1)))
                .is_empty()
        );
        let done = batcher.push(input(2, "m", "a", point::Value::IntValue(2)));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].len(), 2);
        assert!(
            batcher
                .push(input(3, "m", "a", point::Value::IntValue(3)))
                .is_empty()
        );
        assert_eq!(batcher.finish().map(|b| b.len()), Some(1));
        assert_eq!(batcher.finish(), None);
    }

    #[test]
    fn batcher_splits_by_bytes() {
        let big = || input(1, "m", "a", point::Value::StringValue("x".repeat(100)));
        let size = big().point.encoded_len();
        let mut batcher = Batcher::new(1000, size * 2);
        assert!(batcher.push(big()).is_empty());
        assert!(batcher.push(big()).is_empty());
        let done = batcher.push(big());
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].len(), 2);
        assert_eq!(batcher.finish().map(|b| b.len()), Some(1));
    }

    fn options(batch_size: usize) -> ReadOptions {
        ReadOptions {
            format: None,
            default_metric: None,
            batch_size,
            max_batch_bytes: MAX_BATCH_BYTES,
        }
    }

    #[test]
    fn reader_counts_lines_and_batches() {
        let text = b"metric,time,value,host\ncpu,1,1.5,a\n\ncpu,oops,2,a\ncpu,3,2,b\r\n\xff,1,1,a\ncpu,4,3,a";
        let mut requests = Vec::new();
        let outcome = read_points(
            Cursor::new(text.to_vec()),
            &options(2),
            |request| {
                requests.push(request);
                true
            },
            |_| {},
        );

        assert_eq!(requests.len(), 2);
        assert_eq!(outcome.line_of_point, vec![2, 5, 7]);
        assert_eq!(outcome.invalid_lines, 2);
        assert_eq!(outcome.listed_invalid[0].0, 4);
        assert!(
            outcome.listed_invalid[0]
                .1
                .contains("invalid time \"oops\"")
        );
        assert_eq!(
            outcome.listed_invalid[1],
            (6, "the line is not valid UTF-8".to_owned())
        );
        assert_eq!(outcome.fatal, None);
    }

    #[test]
    fn reader_stops_on_bad_header() {
        let outcome = read_points(
            Cursor::new(b"cpu,1,1.5\n".to_vec()),
            &options(10),
            |_| true,
            |_| {},
        );
        let fatal = outcome.fatal.unwrap();
        assert!(fatal.starts_with("line 1: "), "{fatal}");
        assert!(fatal.contains("no value column"), "{fatal}");
    }

    #[test]
    fn reader_stops_when_stream_closes() {
        let text = "metric,value\na,1\nb,2\nc,3\n";
        let mut sent = 0;
        let outcome = read_points(
            Cursor::new(text.as_bytes().to_vec()),
            &options(1),
            |_| {
                sent += 1;
                false
            },
            |_| {},
        );
        assert_eq!(sent, 1);
        assert_eq!(outcome.line_of_point, vec![2]);
    }

    #[test]
    fn reader_bounds_listed_invalid_lines() {
        let mut text = String::from("metric,value\n");
        for _ in 0..30 {
            text.push_str("cpu\n");
        }
        let outcome = read_points(
            Cursor::new(text.into_bytes()),
            &options(10),
            |_| true,
            |_| {},
        );
        assert_eq!(outcome.invalid_lines, 30);
        assert_eq!(outcome.listed_invalid.len(), MAX_LISTED_PROBLEMS);
    }

    #[test]
    fn reader_warns_once_about_seconds() {
        let text = "metric,time,value\ncpu,1796378400,1\ncpu,1796378401,2\n";
        let mut warnings = Vec::new();
        let outcome = read_points(
            Cursor::new(text.as_bytes().to_vec()),
            &options(10),
            |_| true,
            |warning| warnings.push(warning.to_owned()),
        );
        assert_eq!(outcome.line_of_point, vec![2, 3], "both points are written");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("warning: line 2: time 1796378400 looks like seconds"),
            "{warnings:?}"
        );
    }

    #[test]
    fn report_maps_rejections_to_lines() {
        let outcome = ReadOutcome {
            line_of_point: vec![3, 4, 9],
            invalid_lines: 1,
            listed_invalid: vec![(5, "bad time".into())],
            fatal: None,
        };
        let response = StreamPointsResponse {
            accepted: 1,
            rejected: 3,
            errors: vec![
                PointError {
                    index: 2,
                    reason: "NaN".into(),
                },
                PointError {
                    index: 0,
                    reason: "type".into(),
                },
                PointError {
                    index: 7,
                    reason: "odd".into(),
                },
            ],
        };
        let report = WriteReport::new(&response, &outcome);
        assert_eq!(
            report.problem_lines(),
            vec![
                "line 3: rejected: type",
                "line 5: invalid: bad time",
                "line 9: rejected: NaN",
                "rejected point #7 of the stream: odd",
            ]
        );
        assert_eq!(report.unlisted, 0);
        let err = report.to_result().unwrap_err().to_string();
        assert!(err.contains("3 points rejected by the server"), "{err}");
        assert!(err.contains("1 line that could not be parsed"), "{err}");
    }

    #[test]
    fn report_counts_unlisted() {
        let outcome = ReadOutcome {
            invalid_lines: 50,
            listed_invalid: (1..=20).map(|line| (line, "x".to_owned())).collect(),
            ..ReadOutcome::default()
        };
        let report = WriteReport::new(&StreamPointsResponse::default(), &outcome);
        assert_eq!(report.listed.len(), 20);
        assert_eq!(report.unlisted, 30);
        assert_eq!(
            report.problem_lines().last().unwrap(),
            "... and 30 more problems not listed"
        );
    }

    #[test]
    fn report_clean_write_succeeds() {
        let response = StreamPointsResponse {
            accepted: 5,
            ..StreamPointsResponse::default()
        };
        let report = WriteReport::new(&response, &ReadOutcome::default());
        assert!(report.to_result().is_ok());
        assert!(report.problem_lines().is_empty());
    }

    /// Ingest service that stores every message and rejects points whose
    /// value is the string "bad", numbering points as the API defines.
    #[derive(Clone, Default)]
    struct RecordingIngest {
        requests: Arc<Mutex<Vec<StreamPointsRequest>>>,
    }

    #[tonic::async_trait]
    impl IngestService for RecordingIngest {
        async fn stream_points(
            &self,
            request: Request<Streaming<StreamPointsRequest>>,
        ) -> Result<Response<StreamPointsResponse>, Status> {
            let mut stream = request.into_inner();
            let mut response = StreamPointsResponse::default();
            let mut index = 0u64;
            while let Some(message) = stream.next().await {
                let message = message?;
                let mut values: Vec<bool> = message
                    .points
                    .iter()
                    .map(|p| p.value == Some(point::Value::StringValue("bad".into())))
                    .collect();
                for series in &message.series {
                    values.extend(series.times_unix_nano.iter().map(|_| false));
                    for (offset, value) in series.string_values.iter().enumerate() {
                        let position = values.len() - series.times_unix_nano.len() + offset;
                        values[position] = value == "bad";
                    }
                }
                for is_bad in values {
                    if is_bad {
                        response.rejected += 1;
                        response.errors.push(PointError {
                            index,
                            reason: "value \"bad\" is not accepted".into(),
                        });
                    } else {
                        response.accepted += 1;
                    }
                    index += 1;
                }
                self.requests.lock().unwrap().push(message);
            }
            Ok(Response::new(response))
        }

        async fn write_points(
            &self,
            _request: Request<WritePointsRequest>,
        ) -> Result<Response<WritePointsResponse>, Status> {
            Err(Status::unimplemented(
                "only StreamPoints is used by the write command",
            ))
        }
    }

    #[tokio::test]
    async fn write_streams_to_server() {
        let service = RecordingIngest::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(IngestServiceServer::new(service.clone()))
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );

        let input = concat!(
            "{\"metric\":\"cpu\",\"time\":1,\"value\":1.5,\"tags\":{\"host\":\"a\"}}\n",
            "{\"metric\":\"cpu\",\"time\":2,\"value\":\"bad\",\"tags\":{\"host\":\"b\"}}\n",
            "{\"metric\":\"cpu\",\"time\":3,\"value\":\"ok\",\"tags\":{\"host\":\"b\"}}\n",
            "not json\n",
            "{\"metric\":\"cpu\",\"time\":4,\"value\":2.5,\"tags\":{\"host\":\"a\"}}\n",
            "{\"metric\":\"mem\",\"time\":5,\"value\":\"bad\"}\n",
        );
        let connection = connect(&address.to_string()).await.unwrap();
        let (response, outcome) = stream_points(
            &connection,
            Cursor::new(input.as_bytes().to_vec()),
            options(3),
        )
        .await
        .unwrap();
        server.abort();

        let report = WriteReport::new(&response, &outcome);
        assert_eq!(report.accepted, 3);
        assert_eq!(report.rejected, 2);
        assert_eq!(report.invalid_lines, 1);
        let lines = report.problem_lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("line 2: rejected: "), "{lines:?}");
        assert!(
            lines[1].starts_with("line 4: invalid: invalid JSON"),
            "{lines:?}"
        );
        assert!(lines[2].starts_with("line 6: rejected: "), "{lines:?}");

        let requests = service.requests.lock().unwrap();
        assert_eq!(requests.len(), 2, "batches of 3 points and of 2 points");
        assert_eq!(requests[0].series.len(), 1, "cpu/b has two string points");
        assert_eq!(requests[0].series[0].string_values, vec!["bad", "ok"]);
    }
}
