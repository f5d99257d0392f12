//! The `watch` command: a live subscription to aggregation windows.

use std::io::{self, Write};
use std::time::Duration;

use crate::proto::v1::{
    EmitMode, Filter, Gap, Heartbeat, SubscribeWindowsRequest, Window, WindowState, window_update,
};

use super::client::connect;
use super::filter::parse_filter_arg;
use super::output::{Cell, RowWriter, format_time, ignore_broken_pipe};
use super::parse::{AggregationArg, parse_aggregation, parse_duration, to_proto_duration};
use super::query::{
    FILTER_HELP, check_unique_labels, parse_positive_duration, tag_column_name, unique_keys,
};
use super::{ClientArgs, OutputFormat};

/// When the server sends window updates.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitArg {
    /// Only final results, when a window closes.
    Close,
    /// Final results plus partial and revised results while a window
    /// changes, at most once per --update-interval.
    Update,
}

#[derive(clap::Args, Debug, Clone)]
pub struct WatchArgs {
    /// Metric to watch.
    pub metric: String,

    /// Window width, aligned to the Unix epoch, such as 10s or 1m.
    #[arg(long, value_parser = parse_positive_duration)]
    pub window: Duration,

    /// Hop between window starts for sliding windows. Default: the window
    /// width, so windows do not overlap.
    #[arg(long, value_parser = parse_positive_duration)]
    pub slide: Option<Duration>,

    /// Aggregation to compute per window: sum, mean, median, min, max,
    /// count, stddev, variance, rate, trend, first, last, increase, or pNN
    /// for a percentile. Repeat for more columns.
    #[arg(long = "agg", value_name = "NAME", required = true, value_parser = parse_aggregation)]
    pub aggregations: Vec<AggregationArg>,

    /// Tag keys to group by, such as host, without the tags. prefix that
    /// --filter uses. Repeat or separate with commas.
    #[arg(long = "group-by", value_name = "TAG", value_delimiter = ',')]
    pub group_by: Vec<String>,

    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter_arg, help = FILTER_HELP)]
    pub filters: Vec<Filter>,

    /// How long after its end a window still accepts late points.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub lateness: Duration,

    /// When the server sends window updates.
    #[arg(long, value_enum, default_value = "close")]
    pub emit: EmitArg,

    /// Minimum time between partial updates of one window, with --emit
    /// update.
    #[arg(long, value_parser = parse_positive_duration, default_value = "1s")]
    pub update_interval: Duration,

    /// Number of already closed windows to print first, computed from
    /// stored points.
    #[arg(long, default_value_t = 0)]
    pub backfill: u32,

    /// Also print heartbeats, which report the server's watermark.
    #[arg(long)]
    pub verbose: bool,
}

/// Builds the SubscribeWindows request.
pub fn build_subscribe_request(args: &WatchArgs) -> anyhow::Result<SubscribeWindowsRequest> {
    check_unique_labels(&args.aggregations)?;
    let emit = match args.emit {
        EmitArg::Close => EmitMode::OnClose,
        EmitArg::Update => EmitMode::OnUpdate,
    };
    Ok(SubscribeWindowsRequest {
        metric: args.metric.clone(),
        filters: args.filters.clone(),
        group_by: args.group_by.clone(),
        window: Some(to_proto_duration(args.window)),
        slide: args.slide.map(to_proto_duration),
        aggregations: args
            .aggregations
            .iter()
            .map(|aggregation| aggregation.spec)
            .collect(),
        allowed_lateness: Some(to_proto_duration(args.lateness)),
        emit: emit as i32,
        update_interval: Some(to_proto_duration(args.update_interval)),
        backfill_windows: args.backfill,
    })
}

/// Columns of a window row: state, start, end, group, the window's point
/// count, one per aggregation, and revision. The point count is named
/// `points` so that it differs from the column of `--agg count`.
///
/// With `group_keys`, which CSV output passes, the group column is
/// replaced by one column per group tag, as in `aggregate --output csv`.
/// A key that is also the name of another column is written as
/// `tags.<key>`.
pub fn window_columns(labels: &[String], group_keys: Option<&[String]>) -> Vec<String> {
    let mut other_columns: Vec<String> = ["state", "start", "end", "points", "revision"]
        .map(String::from)
        .into();
    other_columns.extend(labels.iter().cloned());

    let mut columns: Vec<String> = ["state", "start", "end"].map(String::from).into();
    match group_keys {
        Some(keys) => columns.extend(keys.iter().map(|key| tag_column_name(key, &other_columns))),
        None => columns.push("group".to_owned()),
    }
    columns.push("points".to_owned());
    columns.extend(labels.iter().cloned());
    columns.push("revision".to_owned());
    columns
}

/// Expected column widths, so the table header lines up with the rows:
/// `REVISION` and whole-second UTC times such as `2026-12-04T10:00:00Z`.
fn window_column_widths(labels: &[String]) -> Vec<usize> {
    let mut widths = vec![8, 20, 20, 0, 0];
    widths.extend(labels.iter().map(|_| 0));
    widths.push(0);
    widths
}

fn state_name(state: i32) -> &'static str {
    match WindowState::try_from(state) {
        Ok(WindowState::Partial) => "PARTIAL",
        Ok(WindowState::Final) => "FINAL",
        Ok(WindowState::Revision) => "REVISION",
        Ok(WindowState::Unspecified) | Err(_) => "UNKNOWN",
    }
}

/// Lays out one window as a row of [`window_columns`] with the same
/// `group_keys`.
pub fn window_row(
    window: &Window,
    aggregation_count: usize,
    group_keys: Option<&[String]>,
) -> Vec<Cell> {
    let mut row = vec![
        Cell::Text(state_name(window.state).to_owned()),
        Cell::Text(format_time(window.start_unix_nano, None)),
        Cell::Text(format_time(window.end_unix_nano, None)),
    ];
    match group_keys {
        Some(keys) => row.extend(keys.iter().map(|key| {
            window
                .group
                .get(key)
                .map_or(Cell::Empty, |value| Cell::Text(value.clone()))
        })),
        None => row.push(Cell::tags(&window.group)),
    }
    row.push(Cell::UInt(window.count));
    for index in 0..aggregation_count {
        row.push(Cell::aggregate_value(window.values.get(index)));
    }
    row.push(Cell::UInt(u64::from(window.revision)));
    row
}

/// Describes a heartbeat for stderr.
pub fn heartbeat_text(heartbeat: &Heartbeat) -> String {
    format!(
        "heartbeat: windows ending at or before {} are closed; {} late points since the last heartbeat",
        format_time(heartbeat.watermark_unix_nano, None),
        heartbeat.late_points
    )
}

/// Describes late points for stderr. They are reported even without
/// --verbose because those points are missing from the printed windows.
pub fn late_points_text(heartbeat: &Heartbeat) -> String {
    format!(
        "warning: {} points arrived for windows that had already closed and are not counted; \
         raise --lateness to include them",
        heartbeat.late_points
    )
}

/// Describes a gap for stderr.
pub fn gap_text(gap: &Gap) -> String {
    format!(
        "warning: gap: the server dropped {} window updates because this client read them too slowly",
        gap.windows_dropped
    )
}

/// JSON line of a heartbeat, for `--output json`.
pub fn heartbeat_json(heartbeat: &Heartbeat) -> String {
    serde_json::json!({
        "heartbeat": {
            "watermark": format_time(heartbeat.watermark_unix_nano, None),
            "late_points": heartbeat.late_points,
        }
    })
    .to_string()
}

/// JSON line of a gap, for `--output json`.
pub fn gap_json(gap: &Gap) -> String {
    serde_json::json!({ "gap": { "windows_dropped": gap.windows_dropped } }).to_string()
}

/// Prints window updates. Windows go to stdout. Gaps and heartbeats go
/// to stdout as JSON lines with `--output json`, and to stderr otherwise
/// so that table and CSV output keep one row shape.
struct UpdatePrinter<W: Write> {
    rows: RowWriter<W>,
    format: OutputFormat,
    aggregation_count: usize,
    /// Group tag keys that get a column each, in CSV output only.
    group_keys: Option<Vec<String>>,
    verbose: bool,
}

impl<W: Write> UpdatePrinter<W> {
    fn print(&mut self, update: window_update::Kind) -> io::Result<()> {
        match update {
            window_update::Kind::Window(window) => {
                let row = window_row(&window, self.aggregation_count, self.group_keys.as_deref());
                self.rows.write_row(&row)?;
            }
            window_update::Kind::Heartbeat(heartbeat) => {
                if self.format == OutputFormat::Json {
                    if self.verbose || heartbeat.late_points > 0 {
                        self.rows.write_raw_line(&heartbeat_json(&heartbeat))?;
                    }
                } else if self.verbose {
                    eprintln!("{}", heartbeat_text(&heartbeat));
                } else if heartbeat.late_points > 0 {
                    eprintln!("{}", late_points_text(&heartbeat));
                }
            }
            window_update::Kind::Gap(gap) => {
                if self.format == OutputFormat::Json {
                    self.rows.write_raw_line(&gap_json(&gap))?;
                } else {
                    eprintln!("{}", gap_text(&gap));
                }
            }
        }
        Ok(())
    }
}

pub async fn run(args: WatchArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let request = build_subscribe_request(&args)?;
    let labels: Vec<String> = args.aggregations.iter().map(|a| a.label.clone()).collect();
    let connection = connect(&client.addr).await?;
    let mut stream = connection
        .live()
        .subscribe_windows(request)
        .await
        .map_err(|status| connection.status_error("SubscribeWindows", status))?
        .into_inner();

    // CSV columns are fixed before the first window arrives, which is safe
    // because the server's window groups contain only --group-by keys.
    let group_keys = (client.output == OutputFormat::Csv).then(|| unique_keys(&args.group_by));
    let mut printer = UpdatePrinter {
        rows: RowWriter::new(
            io::stdout(),
            client.output,
            window_columns(&labels, group_keys.as_deref()),
            &window_column_widths(&labels),
        ),
        format: client.output,
        aggregation_count: labels.len(),
        group_keys,
        verbose: args.verbose,
    };

    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            message = stream.message() => match message {
                Ok(Some(update)) => {
                    let Some(kind) = update.kind else { continue };
                    let printed = printer.print(kind);
                    if printed.as_ref().is_err_and(|err| err.kind() == io::ErrorKind::BrokenPipe) {
                        return Ok(());
                    }
                    ignore_broken_pipe(printed)?;
                }
                Ok(None) => {
                    eprintln!("the server ended the subscription");
                    return Ok(());
                }
                Err(status) => return Err(connection.status_error("SubscribeWindows", status)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::proto::v1::AggregateValue;

    fn watch_args() -> WatchArgs {
        WatchArgs {
            metric: "cpu".into(),
            window: Duration::from_secs(10),
            slide: None,
            aggregations: vec![
                parse_aggregation("mean").unwrap(),
                parse_aggregation("max").unwrap(),
            ],
            group_by: vec!["host".into()],
            filters: vec![],
            lateness: Duration::ZERO,
            emit: EmitArg::Close,
            update_interval: Duration::from_secs(1),
            backfill: 3,
            verbose: false,
        }
    }

    #[test]
    fn subscribe_request_fields() {
        let request = build_subscribe_request(&watch_args()).unwrap();
        assert_eq!(request.metric, "cpu");
        assert_eq!(
            request.window,
            Some(prost_types::Duration {
                seconds: 10,
                nanos: 0
            })
        );
        assert_eq!(request.slide, None);
        assert_eq!(request.aggregations.len(), 2);
        assert_eq!(request.group_by, vec!["host"]);
        assert_eq!(
            request.allowed_lateness,
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 0
            })
        );
        assert_eq!(request.emit, EmitMode::OnClose as i32);
        assert_eq!(request.backfill_windows, 3);
    }

    #[test]
    fn subscribe_request_sliding_update() {
        let mut args = watch_args();
        args.slide = Some(Duration::from_secs(5));
        args.emit = EmitArg::Update;
        args.update_interval = Duration::from_millis(500);
        let request = build_subscribe_request(&args).unwrap();
        assert_eq!(
            request.slide,
            Some(prost_types::Duration {
                seconds: 5,
                nanos: 0
            })
        );
        assert_eq!(request.emit, EmitMode::OnUpdate as i32);
        assert_eq!(
            request.update_interval,
            Some(prost_types::Duration {
                seconds: 0,
                nanos: 500_000_000
            })
        );
    }

    #[test]
    fn window_rows() {
        let window = Window {
            start_unix_nano: 1_796_378_400_000_000_000,
            end_unix_nano: 1_796_378_410_000_000_000,
            group: HashMap::from([("host".to_owned(), "a".to_owned())]),
            count: 7,
            values: vec![AggregateValue {
                value: Some(1.25),
                text: None,
            }],
            state: WindowState::Revision as i32,
            revision: 2,
        };
        let row = window_row(&window, 2, None);
        let labels = vec!["mean".to_owned(), "max".to_owned()];
        assert_eq!(row.len(), window_columns(&labels, None).len());
        assert_eq!(row[0], Cell::Text("REVISION".into()));
        assert_eq!(row[1], Cell::Text("2026-12-04T10:00:00Z".into()));
        assert_eq!(row[2], Cell::Text("2026-12-04T10:00:10Z".into()));
        assert_eq!(row[3].to_text(), "host=a");
        assert_eq!(row[4], Cell::UInt(7));
        assert_eq!(row[5], Cell::Float(1.25));
        assert_eq!(row[6], Cell::Empty);
        assert_eq!(row[7], Cell::UInt(2));
    }

    #[test]
    fn window_columns_unique_with_count() {
        let labels = vec!["count".to_owned(), "mean".to_owned()];
        assert_eq!(
            window_columns(&labels, None),
            vec![
                "state", "start", "end", "group", "points", "count", "mean", "revision"
            ]
        );
    }

    #[test]
    fn window_csv_splits_group_tags() {
        let labels = vec!["mean".to_owned()];
        let group_keys = ["host", "dc", "start"].map(String::from);
        let columns = window_columns(&labels, Some(&group_keys));
        assert_eq!(
            columns,
            vec![
                "state",
                "start",
                "end",
                "host",
                "dc",
                "tags.start",
                "points",
                "mean",
                "revision"
            ]
        );

        let window = Window {
            start_unix_nano: 1_796_378_400_000_000_000,
            end_unix_nano: 1_796_378_410_000_000_000,
            group: HashMap::from([
                ("host".to_owned(), "a,b".to_owned()),
                ("start".to_owned(), "s".to_owned()),
            ]),
            count: 2,
            values: vec![AggregateValue {
                value: Some(1.5),
                text: None,
            }],
            state: WindowState::Final as i32,
            revision: 0,
        };
        let row = window_row(&window, 1, Some(&group_keys));
        assert_eq!(row.len(), columns.len());

        let mut out = Vec::new();
        let mut writer = RowWriter::new(&mut out, OutputFormat::Csv, columns, &[]);
        writer.write_row(&row).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().nth(1),
            Some("FINAL,2026-12-04T10:00:00Z,2026-12-04T10:00:10Z,\"a,b\",,s,2,1.5,0")
        );
    }

    #[test]
    fn heartbeat_and_gap_messages() {
        let heartbeat = Heartbeat {
            watermark_unix_nano: 1_796_378_400_000_000_000,
            late_points: 4,
        };
        assert!(heartbeat_text(&heartbeat).contains("2026-12-04T10:00:00Z"));
        assert!(late_points_text(&heartbeat).contains("4 points arrived"));
        assert_eq!(
            heartbeat_json(&heartbeat),
            r#"{"heartbeat":{"late_points":4,"watermark":"2026-12-04T10:00:00Z"}}"#
        );
        let gap = Gap { windows_dropped: 9 };
        assert!(gap_text(&gap).contains("dropped 9 window updates"));
        assert_eq!(gap_json(&gap), r#"{"gap":{"windows_dropped":9}}"#);
    }

    #[test]
    fn printer_routes_updates() {
        let mut out = Vec::new();
        let mut printer = UpdatePrinter {
            rows: RowWriter::new(
                &mut out,
                OutputFormat::Json,
                window_columns(&["mean".into()], None),
                &[],
            ),
            format: OutputFormat::Json,
            aggregation_count: 1,
            group_keys: None,
            verbose: false,
        };
        printer
            .print(window_update::Kind::Heartbeat(Heartbeat {
                watermark_unix_nano: 0,
                late_points: 0,
            }))
            .unwrap();
        printer
            .print(window_update::Kind::Gap(Gap { windows_dropped: 1 }))
            .unwrap();
        printer
            .print(window_update::Kind::Window(Window::default()))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with(r#"{"gap""#), "{text}");
        assert!(lines[1].starts_with(r#"{"state":"UNKNOWN""#), "{text}");
    }
}
