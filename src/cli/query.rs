//! The `query`, `aggregate` and `stats` commands.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use anyhow::bail;
use chrono_tz::Tz;

use crate::proto::v1::{
    AggregateRequest, AggregateResponse, Fill, Filter, GetStatisticsRequest, Granularity, Point,
    QueryPointsRequest, QueryPointsResponse, Statistics, TimeRange, point,
};

use super::client::connect;
use super::filter::parse_filter_arg;
use super::output::{Cell, Table, format_time, format_time_nanos, print_table};
use super::parse::{
    AggregationArg, parse_aggregation, parse_duration, parse_time_arg, to_proto_duration,
};
use super::{ClientArgs, OutputFormat};

/// `--start` and `--end`, shared by the commands that read a time range.
#[derive(clap::Args, Debug, Clone)]
pub struct RangeArgs {
    /// Start of the time range, inclusive: RFC 3339, integer nanoseconds
    /// since the epoch, `now`, or relative such as -1h. Default: unbounded.
    #[arg(long, value_parser = parse_time_arg, allow_hyphen_values = true)]
    pub start: Option<i64>,

    /// End of the time range, exclusive, in the same forms as --start.
    /// Default: unbounded.
    #[arg(long, value_parser = parse_time_arg, allow_hyphen_values = true)]
    pub end: Option<i64>,
}

impl RangeArgs {
    /// Returns the protobuf range, or `None` when neither bound is given,
    /// which the server reads as all time. A missing bound is open.
    pub fn to_proto(&self) -> anyhow::Result<Option<TimeRange>> {
        if self.start.is_none() && self.end.is_none() {
            return Ok(None);
        }
        let start = self.start.unwrap_or(i64::MIN);
        let end = self.end.unwrap_or(i64::MAX);
        if start >= end {
            bail!(
                "the time range is empty: --start {} is not before --end {}; swap them or widen the range",
                format_time_nanos(start),
                format_time_nanos(end)
            );
        }
        Ok(Some(TimeRange {
            start_unix_nano: start,
            end_unix_nano: end,
        }))
    }
}

/// Help text of `--filter`, shared by every command that takes filters.
pub const FILTER_HELP: &str = "Only points that match, such as tags.host=a, value>=3, tags.host~^web, \
     tags.dc in eu,us or tags.host exists; repeat to require all";

#[derive(clap::Args, Debug, Clone)]
pub struct QueryArgs {
    /// Metrics to read.
    #[arg(required = true)]
    pub metrics: Vec<String>,

    #[command(flatten)]
    pub range: RangeArgs,

    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter_arg, help = FILTER_HELP)]
    pub filters: Vec<Filter>,

    /// Maximum number of points to print. 0 means the server's default of
    /// 10,000, or its --max-query-points when that is lower.
    #[arg(long, default_value_t = 0)]
    pub limit: u32,

    /// Number of matching points to skip before printing.
    #[arg(long, default_value_t = 0)]
    pub offset: u32,

    /// Print the newest points first.
    #[arg(long)]
    pub desc: bool,
}

/// Builds the QueryPoints request.
pub fn build_query_request(args: &QueryArgs) -> anyhow::Result<QueryPointsRequest> {
    Ok(QueryPointsRequest {
        metrics: args.metrics.clone(),
        range: args.range.to_proto()?,
        filters: args.filters.clone(),
        limit: args.limit,
        offset: args.offset,
        descending: args.desc,
    })
}

fn value_cell(value: &Option<point::Value>) -> Cell {
    match value {
        Some(point::Value::DoubleValue(number)) => Cell::Float(*number),
        Some(point::Value::IntValue(number)) => Cell::Int(*number),
        Some(point::Value::BoolValue(flag)) => Cell::Bool(*flag),
        Some(point::Value::StringValue(text)) => Cell::Text(text.clone()),
        None => Cell::Empty,
    }
}

/// Lays out points with columns time, metric, value and tags.
///
/// CSV gets one column per tag key in place of `tags`, so that its output
/// is valid input for `tidemark write`. A tag whose key is `metric`,
/// `time` or `value` is written under `tags.<key>` to keep the header
/// unambiguous.
pub fn points_table(points: &[Point], format: OutputFormat) -> Table {
    if format != OutputFormat::Csv {
        let mut table = Table::new(["time", "metric", "value", "tags"]);
        for point in points {
            table.push(vec![
                Cell::Text(format_time_nanos(point.time_unix_nano)),
                Cell::Text(point.metric.clone()),
                value_cell(&point.value),
                Cell::tags(&point.tags),
            ]);
        }
        return table;
    }

    let keys: BTreeSet<&str> = points
        .iter()
        .flat_map(|p| p.tags.keys().map(String::as_str))
        .collect();
    let mut columns = vec!["time".to_owned(), "metric".to_owned(), "value".to_owned()];
    for key in &keys {
        if matches!(*key, "time" | "metric" | "value") {
            columns.push(format!("tags.{key}"));
        } else {
            columns.push((*key).to_owned());
        }
    }

    let mut table = Table::new(columns);
    for point in points {
        let mut row = vec![
            Cell::Text(format_time_nanos(point.time_unix_nano)),
            Cell::Text(point.metric.clone()),
            value_cell(&point.value),
        ];
        for key in &keys {
            row.push(
                point
                    .tags
                    .get(*key)
                    .map_or(Cell::Empty, |v| Cell::Text(v.clone())),
            );
        }
        table.push(row);
    }
    table
}

/// Describes how many matching points the response left out, or returns
/// `None` when it has them all.
pub fn truncation_note(response: &QueryPointsResponse, offset: u32) -> Option<String> {
    let printed = response.points.len() as u64;
    let skipped = u64::from(offset);
    let remaining = response.total_matched.saturating_sub(skipped + printed);
    if remaining == 0 {
        return None;
    }
    Some(format!(
        "note: printed {printed} of {} matching points (offset {offset}); use --limit and --offset to see the rest",
        response.total_matched
    ))
}

pub async fn run_query(args: QueryArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let request = build_query_request(&args)?;
    let connection = connect(&client.addr).await?;
    let response = connection
        .query()
        .query_points(request)
        .await
        .map_err(|status| connection.status_error("QueryPoints", status))?
        .into_inner();

    print_table(
        &points_table(&response.points, client.output),
        client.output,
    )?;
    if let Some(note) = truncation_note(&response, args.offset) {
        eprintln!("{note}");
    }
    Ok(())
}

/// Calendar bucket widths.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum GranularityArg {
    Second,
    Minute,
    Hour,
    Day,
    /// ISO weeks, starting on Monday.
    Week,
    Month,
}

impl GranularityArg {
    fn to_proto(self) -> Granularity {
        match self {
            GranularityArg::Second => Granularity::Second,
            GranularityArg::Minute => Granularity::Minute,
            GranularityArg::Hour => Granularity::Hour,
            GranularityArg::Day => Granularity::Day,
            GranularityArg::Week => Granularity::Week,
            GranularityArg::Month => Granularity::Month,
        }
    }
}

/// Treatment of buckets without points.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillArg {
    /// Leave empty buckets out.
    None,
    /// Print empty buckets with empty values.
    Null,
    /// Print empty buckets with zeros.
    Zero,
    /// Repeat the previous non-empty bucket's values.
    Previous,
    /// Interpolate between the neighbouring non-empty buckets.
    Linear,
}

impl FillArg {
    fn to_proto(self) -> Fill {
        match self {
            FillArg::None => Fill::None,
            FillArg::Null => Fill::Null,
            FillArg::Zero => Fill::Zero,
            FillArg::Previous => Fill::Previous,
            FillArg::Linear => Fill::Linear,
        }
    }
}

/// Bucket width: a calendar unit or a fixed step, exactly one of them.
#[derive(clap::Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct BucketWidthArgs {
    /// Calendar bucket width, aligned in --tz.
    #[arg(long, value_enum)]
    pub granularity: Option<GranularityArg>,

    /// Fixed bucket width aligned to the Unix epoch, such as 30s or 5m.
    #[arg(long, value_parser = parse_positive_duration)]
    pub step: Option<Duration>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct AggregateArgs {
    /// Metric to aggregate.
    pub metric: String,

    #[command(flatten)]
    pub range: RangeArgs,

    #[command(flatten)]
    pub bucket: BucketWidthArgs,

    /// IANA time zone in which calendar buckets are aligned and bucket
    /// starts are printed, such as Europe/Berlin. Default: UTC.
    #[arg(long, value_parser = parse_time_zone)]
    pub tz: Option<Tz>,

    /// Aggregation to compute per bucket: sum, mean, median, min, max,
    /// count, stddev, variance, rate, trend, first, last, increase, or pNN
    /// for a percentile. Repeat for more columns.
    #[arg(long = "agg", value_name = "NAME", required = true, value_parser = parse_aggregation)]
    pub aggregations: Vec<AggregationArg>,

    /// Tag keys to group by, such as host, without the tags. prefix that
    /// --filter uses. Repeat or separate with commas.
    #[arg(long = "group-by", value_name = "TAG", value_delimiter = ',')]
    pub group_by: Vec<String>,

    /// Treatment of buckets without points.
    #[arg(long, value_enum, default_value = "none")]
    pub fill: FillArg,

    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter_arg, help = FILTER_HELP)]
    pub filters: Vec<Filter>,
}

/// Parses a duration that must be greater than zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "invalid duration {text:?}: it must be greater than zero"
        ));
    }
    Ok(duration)
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(text: &str) -> Result<Tz, String> {
    text.parse::<Tz>().map_err(|_| {
        format!("unknown time zone {text:?}; expected an IANA name such as UTC, Europe/Berlin or America/New_York")
    })
}

/// Rejects a repeated `--agg`, whose two output columns would share a
/// name.
pub fn check_unique_labels(aggregations: &[AggregationArg]) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    for aggregation in aggregations {
        if !seen.insert(aggregation.label.as_str()) {
            bail!(
                "--agg {} is given twice; give each aggregation once",
                aggregation.label
            );
        }
    }
    Ok(())
}

/// Builds the Aggregate request.
pub fn build_aggregate_request(args: &AggregateArgs) -> anyhow::Result<AggregateRequest> {
    check_unique_labels(&args.aggregations)?;
    Ok(AggregateRequest {
        metric: args.metric.clone(),
        range: args.range.to_proto()?,
        filters: args.filters.clone(),
        granularity: args
            .bucket
            .granularity
            .map_or(Granularity::Unspecified, GranularityArg::to_proto) as i32,
        step: args.bucket.step.map(to_proto_duration),
        time_zone: args
            .tz
            .map(|zone| zone.name().to_owned())
            .unwrap_or_default(),
        aggregations: args
            .aggregations
            .iter()
            .map(|aggregation| aggregation.spec)
            .collect(),
        group_by: args.group_by.clone(),
        fill: args.fill.to_proto() as i32,
    })
}

/// Lays out buckets with columns group, start, the bucket's point count
/// and one column per aggregation. The point count is named `points` so
/// that it differs from the column of `--agg count`. A value the server
/// left unset prints as empty.
///
/// CSV gets one column per group tag in place of `group`, so that each
/// tag value is a cell of its own, as in the CSV output of `query`. The
/// columns follow `group_by`, and keys that only the response contains
/// come after them. A key that is also the name of another column is
/// written as `tags.<key>`.
pub fn aggregate_table(
    response: &AggregateResponse,
    labels: &[String],
    group_by: &[String],
    time_zone: Option<Tz>,
    format: OutputFormat,
) -> Table {
    let mut value_columns = vec!["start".to_owned(), "points".to_owned()];
    value_columns.extend(labels.iter().cloned());

    let group_keys = (format == OutputFormat::Csv).then(|| group_tag_keys(response, group_by));
    let mut columns: Vec<String> = match &group_keys {
        Some(keys) => keys
            .iter()
            .map(|key| tag_column_name(key, &value_columns))
            .collect(),
        None => vec!["group".to_owned()],
    };
    columns.extend(value_columns);

    let mut table = Table::new(columns);
    for series in &response.series {
        let group_cells: Vec<Cell> = match &group_keys {
            Some(keys) => keys
                .iter()
                .map(|key| {
                    series
                        .group
                        .get(key)
                        .map_or(Cell::Empty, |value| Cell::Text(value.clone()))
                })
                .collect(),
            None => vec![Cell::tags(&series.group)],
        };
        for bucket in &series.buckets {
            let mut row = group_cells.clone();
            row.push(Cell::Text(format_time(bucket.start_unix_nano, time_zone)));
            row.push(Cell::UInt(bucket.count));
            for index in 0..labels.len() {
                row.push(Cell::aggregate_value(bucket.values.get(index)));
            }
            table.push(row);
        }
    }
    table
}

/// Returns the group tag keys in `group_by` order without repeats, then
/// the keys of response groups that `group_by` does not name, sorted.
fn group_tag_keys(response: &AggregateResponse, group_by: &[String]) -> Vec<String> {
    let mut keys = unique_keys(group_by);
    let others: BTreeSet<&String> = response
        .series
        .iter()
        .flat_map(|series| series.group.keys())
        .filter(|key| !keys.contains(key))
        .collect();
    keys.extend(others.into_iter().cloned());
    keys
}

/// Returns `keys` in their order without repeats.
pub fn unique_keys(keys: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for key in keys {
        if !unique.contains(key) {
            unique.push(key.clone());
        }
    }
    unique
}

/// Names the CSV column of a tag: the key, or `tags.<key>` when the key is
/// also the name of one of `other_columns`.
pub fn tag_column_name(key: &str, other_columns: &[String]) -> String {
    if other_columns.iter().any(|column| column == key) {
        format!("tags.{key}")
    } else {
        key.to_owned()
    }
}

pub async fn run_aggregate(args: AggregateArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let request = build_aggregate_request(&args)?;
    let connection = connect(&client.addr).await?;
    let response = connection
        .query()
        .aggregate(request)
        .await
        .map_err(|status| connection.status_error("Aggregate", status))?
        .into_inner();

    let labels: Vec<String> = args.aggregations.iter().map(|a| a.label.clone()).collect();
    let table = aggregate_table(&response, &labels, &args.group_by, args.tz, client.output);
    print_table(&table, client.output)
}

#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// Metric to summarize.
    pub metric: String,

    #[command(flatten)]
    pub range: RangeArgs,

    #[arg(long = "filter", value_name = "FILTER", value_parser = parse_filter_arg, help = FILTER_HELP)]
    pub filters: Vec<Filter>,
}

/// Builds the GetStatistics request.
pub fn build_stats_request(args: &StatsArgs) -> anyhow::Result<GetStatisticsRequest> {
    Ok(GetStatisticsRequest {
        metric: args.metric.clone(),
        range: args.range.to_proto()?,
        filters: args.filters.clone(),
    })
}

/// Lays out statistics as one row, with columns named as the fields of
/// the protobuf `Statistics` message.
pub fn stats_table(stats: &Statistics) -> Table {
    let mut table = Table::new([
        "count", "sum", "mean", "min", "max", "median", "std_dev", "variance", "p25", "p75", "p90",
        "p95", "p99",
    ]);
    table.push(vec![
        Cell::UInt(stats.count),
        Cell::optional_float(stats.sum),
        Cell::optional_float(stats.mean),
        Cell::optional_float(stats.min),
        Cell::optional_float(stats.max),
        Cell::optional_float(stats.median),
        Cell::optional_float(stats.std_dev),
        Cell::optional_float(stats.variance),
        Cell::optional_float(stats.p25),
        Cell::optional_float(stats.p75),
        Cell::optional_float(stats.p90),
        Cell::optional_float(stats.p95),
        Cell::optional_float(stats.p99),
    ]);
    table
}

pub async fn run_stats(args: StatsArgs, client: &ClientArgs) -> anyhow::Result<()> {
    let request = build_stats_request(&args)?;
    let connection = connect(&client.addr).await?;
    let response = connection
        .query()
        .get_statistics(request)
        .await
        .map_err(|status| connection.status_error("GetStatistics", status))?
        .into_inner();

    print_table(&stats_table(&response), client.output)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cli::output::render;
    use crate::proto::v1::{AggregateValue, Aggregation, Bucket, Operator, Series};

    fn range(start: Option<i64>, end: Option<i64>) -> RangeArgs {
        RangeArgs { start, end }
    }

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn time_range_bounds() {
        assert_eq!(range(None, None).to_proto().unwrap(), None);

        let both = range(Some(1), Some(5)).to_proto().unwrap().unwrap();
        assert_eq!((both.start_unix_nano, both.end_unix_nano), (1, 5));

        let open_end = range(Some(1), None).to_proto().unwrap().unwrap();
        assert_eq!(open_end.end_unix_nano, i64::MAX);

        let open_start = range(None, Some(5)).to_proto().unwrap().unwrap();
        assert_eq!(open_start.start_unix_nano, i64::MIN);
    }

    #[test]
    fn time_range_empty_rejected() {
        let err = range(Some(5), Some(5)).to_proto().unwrap_err().to_string();
        assert!(err.contains("is not before --end"), "{err}");
        assert!(range(Some(6), Some(5)).to_proto().is_err());
    }

    #[test]
    fn query_request_fields() {
        let args = QueryArgs {
            metrics: vec!["cpu".into(), "mem".into()],
            range: range(Some(1), Some(2)),
            filters: vec![crate::cli::filter::parse_filter("value>3", 0).unwrap()],
            limit: 10,
            offset: 20,
            desc: true,
        };
        let request = build_query_request(&args).unwrap();
        assert_eq!(request.metrics, vec!["cpu", "mem"]);
        assert_eq!(request.range.unwrap().start_unix_nano, 1);
        assert_eq!(request.filters[0].op, Operator::Gt as i32);
        assert_eq!(request.limit, 10);
        assert_eq!(request.offset, 20);
        assert!(request.descending);
    }

    fn sample_points() -> Vec<Point> {
        vec![
            Point {
                metric: "cpu".into(),
                time_unix_nano: 1_796_378_400_000_000_001,
                value: Some(point::Value::DoubleValue(1.5)),
                tags: tags(&[("host", "a"), ("value", "x")]),
            },
            Point {
                metric: "cpu".into(),
                time_unix_nano: 1_796_378_400_000_000_002,
                value: Some(point::Value::IntValue(2)),
                tags: tags(&[("dc", "eu")]),
            },
        ]
    }

    #[test]
    fn points_table_columns() {
        let table = points_table(&sample_points(), OutputFormat::Table);
        assert_eq!(table.columns, vec!["time", "metric", "value", "tags"]);
        assert_eq!(
            table.rows[0][0],
            Cell::Text("2026-12-04T10:00:00.000000001Z".into())
        );
        assert_eq!(table.rows[0][2], Cell::Float(1.5));
        assert_eq!(table.rows[0][3].to_text(), "host=a,value=x");
        assert_eq!(table.rows[1][2], Cell::Int(2));
    }

    #[test]
    fn points_csv_expands_tags() {
        let table = points_table(&sample_points(), OutputFormat::Csv);
        assert_eq!(
            table.columns,
            vec!["time", "metric", "value", "dc", "host", "tags.value"]
        );
        assert_eq!(table.rows[0][3], Cell::Empty);
        assert_eq!(table.rows[0][4], Cell::Text("a".into()));
        assert_eq!(table.rows[0][5], Cell::Text("x".into()));
        assert_eq!(table.rows[1][3], Cell::Text("eu".into()));
    }

    #[test]
    fn truncation_note_counts_rest() {
        let mut response = QueryPointsResponse {
            points: sample_points(),
            total_matched: 2,
            points_scanned: 2,
        };
        assert_eq!(truncation_note(&response, 0), None);
        response.total_matched = 10;
        let note = truncation_note(&response, 3).unwrap();
        assert!(note.contains("printed 2 of 10"), "{note}");
        response.total_matched = 5;
        assert_eq!(truncation_note(&response, 3), None);
    }

    fn aggregate_args() -> AggregateArgs {
        AggregateArgs {
            metric: "cpu".into(),
            range: range(None, None),
            bucket: BucketWidthArgs {
                granularity: None,
                step: Some(Duration::from_secs(30)),
            },
            tz: Some(parse_time_zone("Europe/Berlin").unwrap()),
            aggregations: vec![
                parse_aggregation("mean").unwrap(),
                parse_aggregation("p99").unwrap(),
            ],
            group_by: vec!["host".into()],
            fill: FillArg::Linear,
            filters: vec![],
        }
    }

    #[test]
    fn aggregate_request_fields() {
        let request = build_aggregate_request(&aggregate_args()).unwrap();
        assert_eq!(request.metric, "cpu");
        assert_eq!(request.range, None);
        assert_eq!(
            request.step,
            Some(prost_types::Duration {
                seconds: 30,
                nanos: 0
            })
        );
        assert_eq!(request.granularity, Granularity::Unspecified as i32);
        assert_eq!(request.time_zone, "Europe/Berlin");
        assert_eq!(request.aggregations[0].function, Aggregation::Mean as i32);
        assert_eq!(
            request.aggregations[1].function,
            Aggregation::Percentile as i32
        );
        assert_eq!(request.aggregations[1].percentile, 99.0);
        assert_eq!(request.group_by, vec!["host"]);
        assert_eq!(request.fill, Fill::Linear as i32);
    }

    #[test]
    fn aggregate_request_granularity() {
        let mut args = aggregate_args();
        args.bucket = BucketWidthArgs {
            granularity: Some(GranularityArg::Week),
            step: None,
        };
        args.tz = None;
        let request = build_aggregate_request(&args).unwrap();
        assert_eq!(request.granularity, Granularity::Week as i32);
        assert_eq!(request.step, None);
        assert_eq!(request.time_zone, "");
    }

    #[test]
    fn aggregate_rejects_repeated_agg() {
        let mut args = aggregate_args();
        args.aggregations.push(parse_aggregation("MEAN").unwrap());
        let err = build_aggregate_request(&args).unwrap_err().to_string();
        assert!(err.contains("--agg mean is given twice"), "{err}");
    }

    #[test]
    fn aggregate_table_rows() {
        let response = AggregateResponse {
            series: vec![Series {
                group: tags(&[("host", "a")]),
                buckets: vec![Bucket {
                    start_unix_nano: 1_796_378_400_000_000_000,
                    end_unix_nano: 1_796_378_430_000_000_000,
                    count: 3,
                    values: vec![
                        AggregateValue {
                            value: Some(2.5),
                            text: None,
                        },
                        AggregateValue {
                            value: None,
                            text: None,
                        },
                    ],
                }],
            }],
            points_scanned: 3,
        };
        let labels = vec!["mean".to_owned(), "p99".to_owned()];
        let table = aggregate_table(
            &response,
            &labels,
            &["host".to_owned()],
            parse_time_zone("Europe/Berlin").ok(),
            OutputFormat::Table,
        );
        assert_eq!(
            table.columns,
            vec!["group", "start", "points", "mean", "p99"]
        );
        assert_eq!(table.rows[0][0].to_text(), "host=a");
        assert_eq!(
            table.rows[0][1],
            Cell::Text("2026-12-04T11:00:00+01:00".into())
        );
        assert_eq!(table.rows[0][2], Cell::UInt(3));
        assert_eq!(table.rows[0][3], Cell::Float(2.5));
        assert_eq!(table.rows[0][4], Cell::Empty);
    }

    #[test]
    fn aggregate_columns_unique_with_count() {
        let labels = vec!["count".to_owned()];
        let table = aggregate_table(
            &AggregateResponse::default(),
            &labels,
            &[],
            None,
            OutputFormat::Table,
        );
        assert_eq!(table.columns, vec!["group", "start", "points", "count"]);
    }

    fn grouped_response() -> AggregateResponse {
        let bucket = |count: u64, mean: f64| Bucket {
            start_unix_nano: 1_796_378_400_000_000_000,
            end_unix_nano: 1_796_378_460_000_000_000,
            count,
            values: vec![AggregateValue {
                value: Some(mean),
                text: None,
            }],
        };
        AggregateResponse {
            series: vec![
                Series {
                    group: tags(&[("host", "a,b\"c"), ("dc", "x=y")]),
                    buckets: vec![bucket(2, 1.5)],
                },
                Series {
                    group: tags(&[("host", "d"), ("mean", "m"), ("rack", "r1")]),
                    buckets: vec![bucket(1, 4.0)],
                },
            ],
            points_scanned: 3,
        }
    }

    #[test]
    fn aggregate_csv_splits_group_tags() {
        let labels = vec!["mean".to_owned()];
        let group_by = ["host", "dc", "mean", "host"].map(String::from);
        let table = aggregate_table(
            &grouped_response(),
            &labels,
            &group_by,
            None,
            OutputFormat::Csv,
        );
        assert_eq!(
            table.columns,
            vec!["host", "dc", "tags.mean", "rack", "start", "points", "mean"]
        );

        let text = render(&table, OutputFormat::Csv);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], "\"a,b\"\"c\",x=y,,,2026-12-04T10:00:00Z,2,1.5");
        assert_eq!(lines[2], "d,,m,r1,2026-12-04T10:00:00Z,1,4");
    }

    #[test]
    fn aggregate_table_keeps_group_column() {
        let labels = vec!["mean".to_owned()];
        let group_by = ["host", "dc"].map(String::from);
        for format in [OutputFormat::Table, OutputFormat::Json] {
            let table = aggregate_table(&grouped_response(), &labels, &group_by, None, format);
            assert_eq!(table.columns, vec!["group", "start", "points", "mean"]);
            assert_eq!(table.rows[0][0].to_text(), "dc=x=y,host=a,b\"c");
        }
    }

    #[test]
    fn positive_duration_and_time_zone_parsers() {
        assert_eq!(parse_positive_duration("30s"), Ok(Duration::from_secs(30)));
        let err = parse_positive_duration("0s").unwrap_err();
        assert!(err.contains("greater than zero"), "{err}");
        let err = parse_time_zone("Mars/Olympus").unwrap_err();
        assert!(err.contains("unknown time zone \"Mars/Olympus\""), "{err}");
    }

    #[test]
    fn stats_row() {
        let stats = Statistics {
            count: 4,
            mean: Some(2.0),
            p99: Some(9.0),
            ..Statistics::default()
        };
        let table = stats_table(&stats);
        assert_eq!(table.columns[6], "std_dev");
        assert_eq!(table.rows.len(), 1);
        assert_eq!(table.rows[0][0], Cell::UInt(4));
        assert_eq!(table.rows[0][1], Cell::Empty);
        assert_eq!(table.rows[0][2], Cell::Float(2.0));
        assert_eq!(table.rows[0][12], Cell::Float(9.0));
    }
}
