//! Parsers for the points that `tidemark write` reads: CSV with a header
//! row, or JSON lines.

use std::collections::HashMap;

use serde_json::Value as Json;

use crate::proto::v1::{Point, point};

use super::output::format_time_nanos;
use super::parse::parse_time;

/// Magnitude below which a nonzero integer time is more likely seconds
/// since the epoch than the nanoseconds it is read as. As nanoseconds it
/// lies within 17 minutes of 1970-01-01, and as seconds it can be any
/// date up to the year 33658.
const SECONDS_LIKE_TIME_LIMIT: u64 = 1_000_000_000_000;

/// Format of the points on stdin.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// A header row `metric,time,value,<tag>...` and one point per row.
    Csv,
    /// One JSON object per line: {"metric":"m","time":...,"value":1.5,"tags":{"k":"v"}}.
    Jsonl,
}

/// Guesses the format from the first non-empty line: a line starting with
/// `{` is JSON, anything else is a CSV header.
pub fn detect_format(first_line: &str) -> InputFormat {
    if first_line.trim_start().starts_with('{') {
        InputFormat::Jsonl
    } else {
        InputFormat::Csv
    }
}

/// Values that a line may leave out.
#[derive(Debug, Clone)]
pub struct PointDefaults {
    /// Metric for lines without one, from `--metric`.
    pub metric: Option<String>,
    /// Time for lines without one, in nanoseconds since the Unix epoch.
    /// Relative times such as `-5m` are resolved against it too.
    pub now_ns: i64,
}

/// A point parsed from one input line.
#[derive(Debug, Clone, PartialEq)]
pub struct LinePoint {
    pub point: Point,
    /// The line's time when it was written as an integer small enough to
    /// be seconds since the epoch (see [`SECONDS_LIKE_TIME_LIMIT`]).
    pub seconds_like_time: Option<i64>,
}

/// Returns `time_ns` when `text` is an integer whose magnitude is below
/// [`SECONDS_LIKE_TIME_LIMIT`]. Zero is the same instant in either unit,
/// so it is not reported.
fn seconds_like_time(text: &str, time_ns: i64) -> Option<i64> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
    let is_integer = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
    let is_small = time_ns != 0 && time_ns.unsigned_abs() < SECONDS_LIKE_TIME_LIMIT;
    (is_integer && is_small).then_some(time_ns)
}

/// Column positions of a CSV header.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvHeader {
    metric: Option<usize>,
    time: Option<usize>,
    value: usize,
    /// Tag key and column of every other column.
    tags: Vec<(String, usize)>,
    width: usize,
}

impl CsvHeader {
    /// Parses the header row. `value` is required, and so is `metric`
    /// unless `has_default_metric` is set because `--metric` was given.
    pub fn parse(line: &str, has_default_metric: bool) -> Result<CsvHeader, String> {
        let names = split_csv_line(line)?;
        let mut metric = None;
        let mut time = None;
        let mut value = None;
        let mut tags = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();

        for (column, name) in names.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!(
                    "column {} of the CSV header has no name; name every column",
                    column + 1
                ));
            }
            if let Some(first) = seen.insert(name.to_owned(), column) {
                return Err(format!(
                    "the CSV header names column {name:?} twice (columns {} and {})",
                    first + 1,
                    column + 1
                ));
            }
            match name {
                "metric" => metric = Some(column),
                "time" => time = Some(column),
                "value" => value = Some(column),
                key => tags.push((key.to_owned(), column)),
            }
        }

        let expected = "expected a header row such as metric,time,value,host \
             where columns other than metric, time and value are tags";
        let Some(value) = value else {
            return Err(format!(
                "the CSV header {line:?} has no value column; {expected}"
            ));
        };
        if metric.is_none() && !has_default_metric {
            return Err(format!(
                "the CSV header {line:?} has no metric column; add one or pass --metric NAME"
            ));
        }
        Ok(CsvHeader {
            metric,
            time,
            value,
            tags,
            width: names.len(),
        })
    }

    /// Parses one data row into a point. An empty tag cell leaves the tag
    /// out, and empty metric and time cells take the defaults.
    pub fn parse_row(&self, line: &str, defaults: &PointDefaults) -> Result<LinePoint, String> {
        let cells = split_csv_line(line)?;
        if cells.len() != self.width {
            return Err(format!(
                "the row has {} cells but the header has {} columns",
                cells.len(),
                self.width
            ));
        }

        let metric_cell = self.metric.map(|column| cells[column].trim()).unwrap_or("");
        let metric = match (metric_cell, &defaults.metric) {
            ("", Some(default)) => default.clone(),
            ("", None) => {
                return Err("the metric cell is empty and no --metric was given".to_owned());
            }
            (name, _) => name.to_owned(),
        };

        let time_cell = self.time.map(|column| cells[column].trim()).unwrap_or("");
        let time_unix_nano = if time_cell.is_empty() {
            defaults.now_ns
        } else {
            parse_time(time_cell, defaults.now_ns)?
        };
        let seconds_like_time = seconds_like_time(time_cell, time_unix_nano);

        let value_cell = &cells[self.value];
        if value_cell.is_empty() {
            return Err(
                "the value cell is empty; write a value, or send an empty string as JSON lines"
                    .to_owned(),
            );
        }

        let tags = self
            .tags
            .iter()
            .filter(|(_, column)| !cells[*column].is_empty())
            .map(|(key, column)| (key.clone(), cells[*column].clone()))
            .collect();

        let point = Point {
            metric,
            time_unix_nano,
            tags,
            value: Some(parse_csv_value(value_cell)),
        };
        Ok(LinePoint {
            point,
            seconds_like_time,
        })
    }
}

/// Types a CSV value cell: an integer, then a float, then `true` or
/// `false`, and otherwise the cell's text as a string.
///
/// Floats include `inf`, `infinity` and `NaN` in any case and with an
/// optional sign, as `f64::from_str` reads them. NaN is sent as a double
/// so that the server rejects the point with its reason.
pub fn parse_csv_value(cell: &str) -> point::Value {
    let trimmed = cell.trim();
    if let Ok(number) = trimmed.parse::<i64>() {
        return point::Value::IntValue(number);
    }
    if let Ok(number) = trimmed.parse::<f64>() {
        return point::Value::DoubleValue(number);
    }
    match trimmed {
        "true" => point::Value::BoolValue(true),
        "false" => point::Value::BoolValue(false),
        _ => point::Value::StringValue(cell.to_owned()),
    }
}

/// Splits one CSV line into cells (RFC 4180 quoting: a quoted cell may
/// contain commas, and `""` inside it is one quote).
///
/// NOTE: a quoted cell cannot span lines, because input is read and
/// numbered line by line.
pub fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut cells = Vec::new();
    let mut chars = line.chars().peekable();

    loop {
        let mut cell = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        cell.push('"');
                    }
                    Some('"') => break,
                    Some(c) => cell.push(c),
                    None => {
                        return Err(format!(
                            "cell {} has an opening quote but no closing quote; \
                             quoted cells cannot span lines",
                            cells.len() + 1
                        ));
                    }
                }
            }
            match chars.next() {
                None => {
                    cells.push(cell);
                    return Ok(cells);
                }
                Some(',') => cells.push(cell),
                Some(c) => {
                    return Err(format!(
                        "cell {} has {c:?} after its closing quote; write \"\" for a quote inside a quoted cell",
                        cells.len() + 1
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        cells.push(cell);
                        return Ok(cells);
                    }
                    Some(',') => {
                        cells.push(cell);
                        break;
                    }
                    Some(c) => cell.push(c),
                }
            }
        }
    }
}

/// Field names of a JSON line, for error messages.
const JSON_FIELDS: &str = "metric, time, value and tags";

/// Parses one JSON line into a point.
pub fn parse_json_line(line: &str, defaults: &PointDefaults) -> Result<LinePoint, String> {
    let json: Json = serde_json::from_str(line).map_err(|err| format!("invalid JSON: {err}"))?;
    let Json::Object(object) = json else {
        return Err(format!(
            "expected a JSON object with {JSON_FIELDS}, found {}",
            json_kind(&json)
        ));
    };

    let mut point = Point::default();
    let mut metric = None;
    let mut time = None;
    for (key, field) in &object {
        match key.as_str() {
            "metric" => metric = Some(field),
            "time" => time = Some(field),
            "value" => point.value = Some(parse_json_value(field)?),
            "tags" => point.tags = parse_json_tags(field)?,
            other => {
                return Err(format!(
                    "unknown field {other:?}; the fields are {JSON_FIELDS}"
                ));
            }
        }
    }

    point.metric = match (metric, &defaults.metric) {
        (Some(Json::String(name)), _) if name.is_empty() => {
            return Err("the metric is an empty string; give a metric name".to_owned());
        }
        (Some(Json::String(name)), _) => name.clone(),
        (None | Some(Json::Null), Some(default)) => default.clone(),
        (None | Some(Json::Null), None) => {
            return Err("the metric is missing and no --metric was given".to_owned());
        }
        (Some(other), _) => {
            return Err(format!(
                "metric must be a string, found {}",
                json_kind(other)
            ));
        }
    };

    let mut seconds_like = None;
    point.time_unix_nano = match time {
        None | Some(Json::Null) => defaults.now_ns,
        Some(Json::Number(number)) => {
            let time_ns = number.as_i64().ok_or_else(|| {
                format!("time {number} is not integer nanoseconds since the epoch in the signed 64-bit range")
            })?;
            seconds_like = seconds_like_time(&number.to_string(), time_ns);
            time_ns
        }
        Some(Json::String(text)) => {
            let time_ns = parse_time(text, defaults.now_ns)?;
            seconds_like = seconds_like_time(text, time_ns);
            time_ns
        }
        Some(other) => {
            return Err(format!(
                "time must be integer nanoseconds or an RFC 3339 string, found {}",
                json_kind(other)
            ));
        }
    };

    if point.value.is_none() {
        return Err("the value is missing".to_owned());
    }
    Ok(LinePoint {
        point,
        seconds_like_time: seconds_like,
    })
}

/// Types a JSON value: integers in the i64 range become int values, other
/// numbers double values, and booleans and strings keep their kind.
fn parse_json_value(json: &Json) -> Result<point::Value, String> {
    match json {
        Json::Number(number) => {
            // Integers outside the i64 range become doubles, as in CSV.
            match (number.as_i64(), number.as_f64()) {
                (Some(integer), _) => Ok(point::Value::IntValue(integer)),
                (None, Some(double)) => Ok(point::Value::DoubleValue(double)),
                (None, None) => Err(format!("value {number} is not representable as a double")),
            }
        }
        Json::Bool(flag) => Ok(point::Value::BoolValue(*flag)),
        Json::String(text) => Ok(point::Value::StringValue(text.clone())),
        other => Err(format!(
            "value must be a number, boolean or string, found {}",
            json_kind(other)
        )),
    }
}

/// Reads the `tags` object. Number and boolean tag values are written as
/// text, such as "8080" and "true". A null tag value is an error, because
/// dropping the tag would move the point to another series.
fn parse_json_tags(json: &Json) -> Result<HashMap<String, String>, String> {
    let object = match json {
        Json::Object(object) => object,
        Json::Null => return Ok(HashMap::new()),
        other => {
            return Err(format!(
                "tags must be an object of strings, found {}",
                json_kind(other)
            ));
        }
    };

    let mut tags = HashMap::with_capacity(object.len());
    for (key, value) in object {
        let text = match value {
            Json::String(text) => text.clone(),
            Json::Number(number) => number.to_string(),
            Json::Bool(flag) => flag.to_string(),
            Json::Null => {
                return Err(format!(
                    "tag {key:?} is null; give it a string value or leave the tag out"
                ));
            }
            other => {
                return Err(format!(
                    "tag {key:?} must be a string, found {}",
                    json_kind(other)
                ));
            }
        };
        tags.insert(key.clone(), text);
    }
    Ok(tags)
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Line-by-line parser of one input stream. The first non-empty line
/// decides the format unless it was given, and for CSV it is the header.
#[derive(Debug)]
pub struct PointParser {
    format: Option<InputFormat>,
    header: Option<CsvHeader>,
    defaults: PointDefaults,
    /// Set after the first line, the only line that may start with a byte
    /// order mark.
    started: bool,
    /// Set once a time that looks like seconds has been reported, because
    /// the warning is given once per input.
    seconds_warning_given: bool,
    /// Warning about the last parsed line, until [`PointParser::take_warning`].
    warning: Option<String>,
}

/// Outcome of one input line.
#[derive(Debug, PartialEq)]
pub enum ParsedLine {
    /// A blank line or the CSV header.
    Skipped,
    Point(Point),
    /// The line is not a valid point; reading goes on with the next line.
    Invalid(String),
}

impl PointParser {
    pub fn new(format: Option<InputFormat>, defaults: PointDefaults) -> PointParser {
        PointParser {
            format,
            header: None,
            defaults,
            started: false,
            seconds_warning_given: false,
            warning: None,
        }
    }

    /// Returns and clears the warning about the last parsed line, such as
    /// a time that looks like seconds since the epoch.
    pub fn take_warning(&mut self) -> Option<String> {
        self.warning.take()
    }

    /// Sets the time given to points without one, and against which
    /// relative times are resolved.
    pub fn set_now(&mut self, now_ns: i64) {
        self.defaults.now_ns = now_ns;
    }

    /// Parses the next line. Returns `Err` when the input as a whole
    /// cannot be read, as for a CSV header without a value column.
    pub fn parse_line(&mut self, line: &str) -> Result<ParsedLine, String> {
        // Spreadsheet programs often start a CSV export with a byte order mark.
        let line = if self.started {
            line
        } else {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        self.started = true;

        if line.trim().is_empty() {
            return Ok(ParsedLine::Skipped);
        }
        let format = *self.format.get_or_insert_with(|| detect_format(line));

        let parsed = match format {
            InputFormat::Jsonl => parse_json_line(line, &self.defaults),
            InputFormat::Csv => match &self.header {
                Some(header) => header.parse_row(line, &self.defaults),
                None => {
                    self.header = Some(CsvHeader::parse(line, self.defaults.metric.is_some())?);
                    return Ok(ParsedLine::Skipped);
                }
            },
        };
        Ok(match parsed {
            Ok(line_point) => {
                if let Some(time_ns) = line_point.seconds_like_time {
                    self.warn_seconds_like_time(time_ns);
                }
                ParsedLine::Point(line_point.point)
            }
            Err(problem) => ParsedLine::Invalid(problem),
        })
    }

    /// Sets the warning about an integer time that looks like seconds,
    /// unless it was given before.
    fn warn_seconds_like_time(&mut self, time_ns: i64) {
        if self.seconds_warning_given {
            return;
        }
        self.seconds_warning_given = true;
        self.warning = Some(format!(
            "time {time_ns} looks like seconds since the Unix epoch, but integer times are \
             nanoseconds, so the point is stored at {}. Write times as integer nanoseconds or \
             RFC 3339 such as 2026-12-04T10:00:00Z. This warning is printed once per run",
            format_time_nanos(time_ns)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn defaults(metric: Option<&str>) -> PointDefaults {
        PointDefaults {
            metric: metric.map(str::to_owned),
            now_ns: NOW,
        }
    }

    fn tags(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn format_detection() {
        assert_eq!(detect_format("{\"metric\":\"m\"}"), InputFormat::Jsonl);
        assert_eq!(detect_format("  {"), InputFormat::Jsonl);
        assert_eq!(detect_format("metric,time,value"), InputFormat::Csv);
    }

    #[test]
    fn csv_line_splitting() {
        let cases: &[(&str, &[&str])] = &[
            ("a,b,c", &["a", "b", "c"]),
            ("a,,c", &["a", "", "c"]),
            ("a,b,", &["a", "b", ""]),
            ("", &[""]),
            ("\"a,b\",c", &["a,b", "c"]),
            ("\"say \"\"hi\"\"\",x", &["say \"hi\"", "x"]),
            ("\"\",x", &["", "x"]),
            ("a,b\r", &["a", "b"]),
            (" a , b ", &[" a ", " b "]),
        ];
        for (line, expected) in cases {
            let cells = split_csv_line(line).unwrap_or_else(|err| panic!("{line:?}: {err}"));
            assert_eq!(cells, *expected, "line {line:?}");
        }
    }

    #[test]
    fn csv_line_quote_errors() {
        let err = split_csv_line("a,\"open").unwrap_err();
        assert!(err.contains("cell 2 has an opening quote"), "{err}");
        let err = split_csv_line("\"a\"b,c").unwrap_err();
        assert!(
            err.contains("cell 1 has 'b' after its closing quote"),
            "{err}"
        );
    }

    #[test]
    fn csv_values_typed_in_order() {
        let cases: &[(&str, point::Value)] = &[
            ("42", point::Value::IntValue(42)),
            ("-7", point::Value::IntValue(-7)),
            (" 5 ", point::Value::IntValue(5)),
            ("1.5", point::Value::DoubleValue(1.5)),
            ("1e3", point::Value::DoubleValue(1000.0)),
            ("99999999999999999999", point::Value::DoubleValue(1e20)),
            ("true", point::Value::BoolValue(true)),
            ("false", point::Value::BoolValue(false)),
            ("True", point::Value::StringValue("True".into())),
            ("ok", point::Value::StringValue("ok".into())),
            (" ok", point::Value::StringValue(" ok".into())),
        ];
        for (cell, expected) in cases {
            assert_eq!(parse_csv_value(cell), *expected, "cell {cell:?}");
        }
    }

    #[test]
    fn csv_infinity_and_nan_are_doubles() {
        let infinities: &[(&str, f64)] = &[
            ("inf", f64::INFINITY),
            ("+inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Inf", f64::INFINITY),
            ("-INF", f64::NEG_INFINITY),
            ("infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            (" inf ", f64::INFINITY),
        ];
        for (cell, expected) in infinities {
            assert_eq!(
                parse_csv_value(cell),
                point::Value::DoubleValue(*expected),
                "cell {cell:?}"
            );
        }

        for cell in ["NaN", "nan", "NAN", "-nan"] {
            let value = parse_csv_value(cell);
            assert!(
                matches!(value, point::Value::DoubleValue(number) if number.is_nan()),
                "cell {cell:?} gave {value:?}"
            );
        }

        for cell in ["infinite", "nano", "in f"] {
            assert_eq!(
                parse_csv_value(cell),
                point::Value::StringValue(cell.to_owned()),
                "cell {cell:?}"
            );
        }
    }

    #[test]
    fn csv_header_columns() {
        let header = CsvHeader::parse("metric, time ,value,host,dc", false).unwrap();
        assert_eq!(header.metric, Some(0));
        assert_eq!(header.time, Some(1));
        assert_eq!(header.value, 2);
        assert_eq!(
            header.tags,
            vec![("host".to_owned(), 3), ("dc".to_owned(), 4)]
        );
        assert_eq!(header.width, 5);

        let reordered = CsvHeader::parse("value,host,metric", false).unwrap();
        assert_eq!(reordered.value, 0);
        assert_eq!(reordered.metric, Some(2));
        assert_eq!(reordered.time, None);
    }

    #[test]
    fn csv_header_rejected() {
        let cases: &[(&str, bool, &str)] = &[
            ("metric,time", false, "no value column"),
            ("cpu,1000,1.5", false, "no value column"),
            ("time,value", false, "no metric column"),
            (
                "metric,value,,host",
                false,
                "column 3 of the CSV header has no name",
            ),
            (
                "metric,value,host,host",
                false,
                "names column \"host\" twice (columns 3 and 4)",
            ),
            ("metric,\"value", false, "no closing quote"),
        ];
        for (line, has_default_metric, problem) in cases {
            let err = CsvHeader::parse(line, *has_default_metric).unwrap_err();
            assert!(err.contains(problem), "header {line:?}: {err}");
        }
        assert!(CsvHeader::parse("time,value", true).is_ok());
    }

    #[test]
    fn csv_row_to_point() {
        let header = CsvHeader::parse("metric,time,value,host,dc", false).unwrap();
        let point = header
            .parse_row("cpu,2026-12-04T10:00:00Z,1.5,a,", &defaults(None))
            .unwrap()
            .point;
        assert_eq!(point.metric, "cpu");
        assert_eq!(point.time_unix_nano, 1_796_378_400_000_000_000);
        assert_eq!(point.value, Some(point::Value::DoubleValue(1.5)));
        assert_eq!(point.tags, tags(&[("host", "a")]));

        let point = header
            .parse_row("cpu,,3,a,eu", &defaults(None))
            .unwrap()
            .point;
        assert_eq!(point.time_unix_nano, NOW);
        assert_eq!(point.value, Some(point::Value::IntValue(3)));
        assert_eq!(point.tags, tags(&[("host", "a"), ("dc", "eu")]));

        let point = header
            .parse_row(",123,x,,", &defaults(Some("fallback")))
            .unwrap()
            .point;
        assert_eq!(point.metric, "fallback");
        assert_eq!(point.time_unix_nano, 123);
        assert!(point.tags.is_empty());
    }

    #[test]
    fn csv_row_without_metric_column() {
        let header = CsvHeader::parse("time,value", true).unwrap();
        let point = header.parse_row("5,1", &defaults(Some("m"))).unwrap().point;
        assert_eq!(point.metric, "m");
        assert_eq!(point.time_unix_nano, 5);
    }

    #[test]
    fn csv_row_rejected() {
        let header = CsvHeader::parse("metric,time,value,host", false).unwrap();
        let cases: &[(&str, &str)] = &[
            ("cpu,1,2", "3 cells but the header has 4 columns"),
            ("cpu,1,2,a,b", "5 cells but the header has 4 columns"),
            (",1,2,a", "metric cell is empty"),
            ("cpu,soon,2,a", "invalid time \"soon\""),
            ("cpu,1,,a", "value cell is empty"),
        ];
        for (line, problem) in cases {
            let err = header.parse_row(line, &defaults(None)).unwrap_err();
            assert!(err.contains(problem), "row {line:?}: {err}");
        }
    }

    #[test]
    fn json_line_to_point() {
        let line =
            r#"{"metric":"cpu","time":1000,"value":1.5,"tags":{"host":"a","port":8080,"up":true}}"#;
        let point = parse_json_line(line, &defaults(None)).unwrap().point;
        assert_eq!(point.metric, "cpu");
        assert_eq!(point.time_unix_nano, 1_000);
        assert_eq!(point.value, Some(point::Value::DoubleValue(1.5)));
        assert_eq!(
            point.tags,
            tags(&[("host", "a"), ("port", "8080"), ("up", "true")])
        );

        let point = parse_json_line(
            r#"{"value":2,"time":"2026-12-04T10:00:00Z"}"#,
            &defaults(Some("m")),
        )
        .unwrap()
        .point;
        assert_eq!(point.metric, "m");
        assert_eq!(point.time_unix_nano, 1_796_378_400_000_000_000);
        assert_eq!(point.value, Some(point::Value::IntValue(2)));
        assert!(point.tags.is_empty());

        let point = parse_json_line(r#"{"metric":"m","value":"up"}"#, &defaults(None))
            .unwrap()
            .point;
        assert_eq!(point.time_unix_nano, NOW);
        assert_eq!(point.value, Some(point::Value::StringValue("up".into())));
    }

    #[test]
    fn json_values_typed() {
        let cases: &[(&str, point::Value)] = &[
            ("1", point::Value::IntValue(1)),
            ("-1", point::Value::IntValue(-1)),
            ("1.0", point::Value::DoubleValue(1.0)),
            ("1e2", point::Value::DoubleValue(100.0)),
            (
                "18446744073709551615",
                point::Value::DoubleValue(18446744073709551615.0),
            ),
            ("true", point::Value::BoolValue(true)),
            ("\"1\"", point::Value::StringValue("1".into())),
        ];
        for (value, expected) in cases {
            let line = format!(r#"{{"metric":"m","time":1,"value":{value}}}"#);
            let point = parse_json_line(&line, &defaults(None)).unwrap().point;
            assert_eq!(point.value, Some(expected.clone()), "value {value}");
        }
    }

    #[test]
    fn json_line_rejected() {
        let cases: &[(&str, &str)] = &[
            ("{", "invalid JSON"),
            ("[1]", "expected a JSON object"),
            (r#"{"metric":"m","time":1}"#, "value is missing"),
            (r#"{"metric":"m","value":null}"#, "found null"),
            (r#"{"metric":"m","value":[1]}"#, "found an array"),
            (r#"{"time":1,"value":1}"#, "metric is missing"),
            (r#"{"metric":"","value":1}"#, "metric is an empty string"),
            (r#"{"metric":3,"value":1}"#, "found a number"),
            (
                r#"{"metric":"m","value":1,"time":1.5}"#,
                "not integer nanoseconds",
            ),
            (r#"{"metric":"m","value":1,"time":true}"#, "found a boolean"),
            (
                r#"{"metric":"m","value":1,"time":"later"}"#,
                "invalid time \"later\"",
            ),
            (
                r#"{"metric":"m","value":1,"tags":["a"]}"#,
                "tags must be an object",
            ),
            (
                r#"{"metric":"m","value":1,"tags":{"k":{}}}"#,
                "tag \"k\" must be a string",
            ),
            (
                r#"{"metric":"m","value":1,"tags":{"host":"a","dc":null}}"#,
                "tag \"dc\" is null",
            ),
            (
                r#"{"metric":"m","value":1,"tag":{}}"#,
                "unknown field \"tag\"",
            ),
        ];
        for (line, problem) in cases {
            let err = parse_json_line(line, &defaults(None)).unwrap_err();
            assert!(err.contains(problem), "line {line}: {err}");
        }
    }

    #[test]
    fn seconds_like_times_detected() {
        let header = CsvHeader::parse("metric,time,value", false).unwrap();
        let csv_cases: &[(&str, Option<i64>)] = &[
            ("cpu,1796378400,1", Some(1_796_378_400)),
            ("cpu,-1796378400,1", Some(-1_796_378_400)),
            ("cpu,999999999999,1", Some(999_999_999_999)),
            ("cpu,1000000000000,1", None),
            ("cpu,1796378400000000000,1", None),
            ("cpu,0,1", None),
            ("cpu,1970-01-01T00:00:01Z,1", None),
            ("cpu,,1", None),
        ];
        for (line, expected) in csv_cases {
            let parsed = header.parse_row(line, &defaults(None)).unwrap();
            assert_eq!(parsed.seconds_like_time, *expected, "row {line:?}");
        }

        let json_cases: &[(&str, Option<i64>)] = &[
            (
                r#"{"metric":"m","time":1796378400,"value":1}"#,
                Some(1_796_378_400),
            ),
            (
                r#"{"metric":"m","time":"1796378400","value":1}"#,
                Some(1_796_378_400),
            ),
            (
                r#"{"metric":"m","time":1796378400000000000,"value":1}"#,
                None,
            ),
            (
                r#"{"metric":"m","time":"1970-01-01T00:00:01Z","value":1}"#,
                None,
            ),
            (r#"{"metric":"m","value":1}"#, None),
        ];
        for (line, expected) in json_cases {
            let parsed = parse_json_line(line, &defaults(None)).unwrap();
            assert_eq!(parsed.seconds_like_time, *expected, "line {line}");
        }
    }

    #[test]
    fn parser_warns_once_about_seconds() {
        let mut parser = PointParser::new(None, defaults(None));
        assert_eq!(
            parser.parse_line("metric,time,value"),
            Ok(ParsedLine::Skipped)
        );
        assert_eq!(parser.take_warning(), None);

        let parsed = parser.parse_line("cpu,1796378400,1").unwrap();
        assert!(
            matches!(parsed, ParsedLine::Point(ref p) if p.time_unix_nano == 1_796_378_400),
            "{parsed:?}"
        );
        let warning = parser.take_warning().unwrap();
        assert!(
            warning.starts_with("time 1796378400 looks like seconds since the Unix epoch"),
            "{warning}"
        );
        assert!(
            warning.contains("1970-01-01T00:00:01.796378400Z"),
            "{warning}"
        );
        assert_eq!(parser.take_warning(), None);

        parser.parse_line("cpu,1796378401,1").unwrap();
        assert_eq!(parser.take_warning(), None);
    }

    #[test]
    fn parser_detects_csv_and_skips_header() {
        let mut parser = PointParser::new(None, defaults(None));
        assert_eq!(parser.parse_line(""), Ok(ParsedLine::Skipped));
        assert_eq!(parser.parse_line("metric,value"), Ok(ParsedLine::Skipped));
        let parsed = parser.parse_line("cpu,1").unwrap();
        assert!(
            matches!(parsed, ParsedLine::Point(ref p) if p.metric == "cpu"),
            "{parsed:?}"
        );
        let parsed = parser
            .parse_line("{\"metric\":\"cpu\",\"value\":1}")
            .unwrap();
        assert!(matches!(parsed, ParsedLine::Invalid(_)), "{parsed:?}");
    }

    #[test]
    fn parser_detects_jsonl() {
        let mut parser = PointParser::new(None, defaults(None));
        let parsed = parser.parse_line(r#"{"metric":"cpu","value":1}"#).unwrap();
        assert!(matches!(parsed, ParsedLine::Point(_)), "{parsed:?}");
        let parsed = parser.parse_line("metric,value").unwrap();
        assert!(
            matches!(parsed, ParsedLine::Invalid(ref e) if e.contains("invalid JSON")),
            "{parsed:?}"
        );
    }

    #[test]
    fn parser_honours_given_format() {
        let mut parser = PointParser::new(Some(InputFormat::Jsonl), defaults(None));
        let parsed = parser.parse_line("metric,value").unwrap();
        assert!(matches!(parsed, ParsedLine::Invalid(_)), "{parsed:?}");
    }

    #[test]
    fn parser_skips_byte_order_mark() {
        let mut parser = PointParser::new(None, defaults(None));
        assert_eq!(
            parser.parse_line("\u{feff}metric,value"),
            Ok(ParsedLine::Skipped)
        );
        let parsed = parser.parse_line(" cpu ,1").unwrap();
        assert!(
            matches!(parsed, ParsedLine::Point(ref p) if p.metric == "cpu"),
            "{parsed:?}"
        );
    }

    #[test]
    fn parser_rejects_bad_header() {
        let mut parser = PointParser::new(None, defaults(None));
        let err = parser.parse_line("metric,time").unwrap_err();
        assert!(err.contains("no value column"), "{err}");
    }
}
