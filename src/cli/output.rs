//! Output of command results as an aligned table, JSON lines or CSV.
//!
//! Commands build a [`Table`] of typed [`Cell`]s and the format decides how
//! each cell is written: JSON keeps numbers, booleans and tag maps typed,
//! while the table and CSV write text. JSON and CSV write every value in
//! full. The table, which is meant for reading, rounds floats to 15
//! significant digits and shortens cells longer than
//! [`MAX_TABLE_CELL_CHARS`].

use std::collections::HashMap;
use std::io::{self, Write};

use chrono::{DateTime, SecondsFormat, TimeZone};
use chrono_tz::Tz;
use serde_json::Value as Json;

use super::OutputFormat;

/// Spaces between table columns.
const COLUMN_GAP: &str = "  ";

/// Maximum characters of one table cell. A longer cell keeps this many
/// characters and ends with a marker such as `…(70000 bytes)` that gives
/// the full length.
pub const MAX_TABLE_CELL_CHARS: usize = 256;

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// No value: blank in a table or CSV, `null` in JSON.
    Empty,
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    /// Tags or group keys, sorted by key.
    Tags(Vec<(String, String)>),
}

impl Cell {
    /// Builds a tags cell from a protobuf map, sorted by key.
    pub fn tags(map: &HashMap<String, String>) -> Cell {
        let mut pairs: Vec<(String, String)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        pairs.sort();
        Cell::Tags(pairs)
    }

    /// Builds a float cell, or an empty cell for `None`.
    pub fn optional_float(value: Option<f64>) -> Cell {
        value.map_or(Cell::Empty, Cell::Float)
    }

    /// Cell of one aggregation result: the number, or the text of FIRST
    /// and LAST over strings, or empty when the result has no value.
    pub fn aggregate_value(value: Option<&crate::proto::v1::AggregateValue>) -> Cell {
        match value {
            Some(v) if v.value.is_some() => Cell::optional_float(v.value),
            Some(v) => v.text.clone().map_or(Cell::Empty, Cell::Text),
            None => Cell::Empty,
        }
    }

    /// Text of the cell for a table or CSV.
    pub fn to_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Int(number) => number.to_string(),
            Cell::UInt(number) => number.to_string(),
            Cell::Float(number) => number.to_string(),
            Cell::Bool(flag) => flag.to_string(),
            Cell::Tags(pairs) => pairs
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// JSON form of the cell. Infinite floats become `null` because JSON
    /// has no literal for them.
    pub fn to_json(&self) -> Json {
        match self {
            Cell::Empty => Json::Null,
            Cell::Text(text) => Json::String(text.clone()),
            Cell::Int(number) => Json::from(*number),
            Cell::UInt(number) => Json::from(*number),
            // JSON has no infinity or NaN; they become the strings "inf",
            // "-inf" and "NaN", so they stay distinct from null (no value).
            Cell::Float(number) => serde_json::Number::from_f64(*number)
                .map_or_else(|| Json::String(number.to_string()), Json::Number),
            Cell::Bool(flag) => Json::Bool(*flag),
            Cell::Tags(pairs) => Json::Object(
                pairs
                    .iter()
                    .map(|(key, value)| (key.clone(), Json::String(value.clone())))
                    .collect(),
            ),
        }
    }

    fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::UInt(_) | Cell::Float(_))
    }
}

/// Result rows under named columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> Table {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row, which must have one cell per column.
    pub fn push(&mut self, row: Vec<Cell>) {
        debug_assert_eq!(
            row.len(),
            self.columns.len(),
            "row width differs from the column count"
        );
        self.rows.push(row);
    }
}

/// Renders a whole table in the given format. Every line, the last one
/// included, ends with a newline.
pub fn render(table: &Table, format: OutputFormat) -> String {
    match format {
        OutputFormat::Table => render_aligned(table).0,
        OutputFormat::Json => table
            .rows
            .iter()
            .map(|row| json_line(&table.columns, row) + "\n")
            .collect(),
        OutputFormat::Csv => {
            let mut text = csv_line(table.columns.iter().map(String::as_str)) + "\n";
            for row in &table.rows {
                let cells: Vec<String> = row.iter().map(Cell::to_text).collect();
                text += &csv_line(cells.iter().map(String::as_str));
                text.push('\n');
            }
            text
        }
    }
}

/// Writes a table to stdout. A closed pipe, as under `| head`, ends the
/// output quietly.
pub fn print_table(table: &Table, format: OutputFormat) -> anyhow::Result<()> {
    let (text, shortened_cells) = match format {
        OutputFormat::Table => render_aligned(table),
        OutputFormat::Json | OutputFormat::Csv => (render(table, format), 0),
    };
    let mut stdout = io::stdout().lock();
    ignore_broken_pipe(
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush()),
    )?;
    if shortened_cells > 0 {
        eprintln!(
            "note: table cells longer than {MAX_TABLE_CELL_CHARS} characters were shortened \
             ({shortened_cells} in all); use --output json or --output csv for the full values"
        );
    }
    Ok(())
}

/// Turns a broken-pipe error into success, because a reader that stopped
/// reading is not a failure of the command.
pub fn ignore_broken_pipe(result: io::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(err) => Err(anyhow::anyhow!("failed to write to stdout: {err}")),
        Ok(()) => Ok(()),
    }
}

/// Renders rows padded to the widest cell of each column, and returns the
/// text with the number of cells that were shortened. Columns whose cells
/// are all numbers are right-aligned.
fn render_aligned(table: &Table) -> (String, usize) {
    let mut shortened_cells = 0;
    let texts: Vec<Vec<String>> = table
        .rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| {
                    let text = table_text(cell);
                    if text.shortened {
                        shortened_cells += 1;
                    }
                    text.text
                })
                .collect()
        })
        .collect();

    let column_count = table.columns.len();
    let mut widths: Vec<usize> = table
        .columns
        .iter()
        .map(|name| name.chars().count())
        .collect();
    let mut right_aligned = vec![true; column_count];
    for (row, row_texts) in table.rows.iter().zip(&texts) {
        for (column, (cell, text)) in row.iter().zip(row_texts).enumerate() {
            widths[column] = widths[column].max(text.chars().count());
            if !cell.is_numeric() && *cell != Cell::Empty {
                right_aligned[column] = false;
            }
        }
    }
    // A column with no values at all reads better left-aligned.
    for (column, aligned) in right_aligned.iter_mut().enumerate() {
        if !table.rows.iter().any(|row| row[column].is_numeric()) {
            *aligned = false;
        }
    }

    let mut text = aligned_line(&table.columns, &widths, &right_aligned);
    for row_texts in &texts {
        text += &aligned_line(row_texts, &widths, &right_aligned);
    }
    (text, shortened_cells)
}

/// Pads cells to their column widths, leaving no spaces at the end of the
/// line.
///
/// The padding is written by hand because the `{:width$}` format syntax
/// panics at run time for widths over 65,535 (seen with Rust 1.95).
fn aligned_line(cells: &[String], widths: &[usize], right_aligned: &[bool]) -> String {
    let mut line = String::new();
    for (column, cell) in cells.iter().enumerate() {
        if column > 0 {
            line.push_str(COLUMN_GAP);
        }
        let padding = widths[column].saturating_sub(cell.chars().count());
        if right_aligned[column] {
            line.extend(std::iter::repeat_n(' ', padding));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', padding));
        }
    }
    let mut line = line.trim_end_matches(' ').to_owned();
    line.push('\n');
    line
}

/// Text of one table cell, and whether it was shortened.
struct TableText {
    text: String,
    shortened: bool,
}

/// Converts a cell to its table text. Floats are rounded by
/// [`round_float_text`], and control characters such as newlines are
/// escaped so that one row stays on one line. A text of more than
/// [`MAX_TABLE_CELL_CHARS`] characters after escaping is cut there and
/// ends with a marker that gives the full length in bytes.
fn table_text(cell: &Cell) -> TableText {
    let text = match cell {
        Cell::Float(number) => round_float_text(*number),
        other => other.to_text(),
    };

    let mut output = String::new();
    let mut output_chars = 0;
    for c in text.chars() {
        let escaped = c.escape_default();
        let char_width = if c.is_control() { escaped.len() } else { 1 };
        if output_chars + char_width > MAX_TABLE_CELL_CHARS {
            output.push_str(&format!("…({} bytes)", text.len()));
            return TableText {
                text: output,
                shortened: true,
            };
        }
        if c.is_control() {
            output.extend(escaped);
        } else {
            output.push(c);
        }
        output_chars += char_width;
    }
    TableText {
        text: output,
        shortened: false,
    }
}

/// Formats a float rounded to 15 significant digits (`f64::DIGITS`), so
/// that noise from binary rounding in the 16th and 17th digits is hidden
/// and 3.9970000000000003 prints as 3.997. Any decimal of up to 15
/// significant digits survives a conversion to f64 and back unchanged.
fn round_float_text(number: f64) -> String {
    let significant_digits = f64::DIGITS as usize;
    let rounded = format!("{:.*e}", significant_digits - 1, number)
        .parse::<f64>()
        .unwrap_or(number);
    rounded.to_string()
}

/// Formats one row as a JSON object whose keys follow the column order.
pub fn json_line(columns: &[String], row: &[Cell]) -> String {
    let mut line = String::from("{");
    for (column, (name, cell)) in columns.iter().zip(row).enumerate() {
        if column > 0 {
            line.push(',');
        }
        line.push_str(&Json::String(name.clone()).to_string());
        line.push(':');
        line.push_str(&cell.to_json().to_string());
    }
    line.push('}');
    line
}

/// Formats cells as one CSV line, quoting cells that contain a comma,
/// quote or line break.
pub fn csv_line<'a>(cells: impl IntoIterator<Item = &'a str>) -> String {
    cells
        .into_iter()
        .map(|cell| {
            if cell.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", cell.replace('"', "\"\""))
            } else {
                cell.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Writer of rows that arrive one at a time, as from `watch`. Each row is
/// flushed at once. A table keeps the widths of its header and earlier
/// rows, and widens a column when a longer cell arrives.
pub struct RowWriter<W: Write> {
    out: W,
    format: OutputFormat,
    columns: Vec<String>,
    widths: Vec<usize>,
    header_written: bool,
}

impl<W: Write> RowWriter<W> {
    /// Creates a writer. `min_widths` gives the expected width of each
    /// column, so that the table header lines up with the first rows.
    pub fn new(
        out: W,
        format: OutputFormat,
        columns: Vec<String>,
        min_widths: &[usize],
    ) -> RowWriter<W> {
        let widths = columns
            .iter()
            .enumerate()
            .map(|(column, name)| {
                name.chars()
                    .count()
                    .max(min_widths.get(column).copied().unwrap_or(0))
            })
            .collect();
        RowWriter {
            out,
            format,
            columns,
            widths,
            header_written: false,
        }
    }

    pub fn write_row(&mut self, row: &[Cell]) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => writeln!(self.out, "{}", json_line(&self.columns, row))?,
            OutputFormat::Csv => {
                if !self.header_written {
                    writeln!(
                        self.out,
                        "{}",
                        csv_line(self.columns.iter().map(String::as_str))
                    )?;
                }
                let cells: Vec<String> = row.iter().map(Cell::to_text).collect();
                writeln!(self.out, "{}", csv_line(cells.iter().map(String::as_str)))?;
            }
            OutputFormat::Table => {
                let texts: Vec<String> = row.iter().map(|cell| table_text(cell).text).collect();
                let right_aligned: Vec<bool> = row.iter().map(Cell::is_numeric).collect();
                if !self.header_written {
                    let header_alignment = vec![false; self.columns.len()];
                    self.out.write_all(
                        aligned_line(&self.columns, &self.widths, &header_alignment).as_bytes(),
                    )?;
                }
                for (width, text) in self.widths.iter_mut().zip(&texts) {
                    *width = (*width).max(text.chars().count());
                }
                self.out
                    .write_all(aligned_line(&texts, &self.widths, &right_aligned).as_bytes())?;
            }
        }
        self.header_written = true;
        self.out.flush()
    }

    /// Writes a line that is not a row, such as a JSON heartbeat, and
    /// flushes it.
    pub fn write_raw_line(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")?;
        self.out.flush()
    }
}

/// Formats a time as RFC 3339 in UTC with all nine fraction digits, as
/// point times are output.
pub fn format_time_nanos(time_ns: i64) -> String {
    DateTime::from_timestamp_nanos(time_ns).to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Formats a time as RFC 3339 with only the fraction digits it needs,
/// in `time_zone` when given and in UTC otherwise.
pub fn format_time(time_ns: i64, time_zone: Option<Tz>) -> String {
    let utc = DateTime::from_timestamp_nanos(time_ns);
    match time_zone {
        Some(zone) => zone
            .from_utc_datetime(&utc.naive_utc())
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
        None => utc.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// Formats a server timestamp that uses 0 for "unset" as empty.
pub fn optional_time_cell(time_ns: i64) -> Cell {
    if time_ns == 0 {
        Cell::Empty
    } else {
        Cell::Text(format_time(time_ns, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut table = Table::new(["name", "count", "tags"]);
        table.push(vec![
            Cell::Text("cpu".into()),
            Cell::UInt(12),
            Cell::Tags(vec![
                ("dc".into(), "eu".into()),
                ("host".into(), "a".into()),
            ]),
        ]);
        table.push(vec![
            Cell::Text("memory, used".into()),
            Cell::Empty,
            Cell::Tags(vec![]),
        ]);
        table
    }

    #[test]
    fn table_aligns_columns() {
        let text = render(&sample(), OutputFormat::Table);
        let expected = "\
name          count  tags
cpu              12  dc=eu,host=a
memory, used\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn table_escapes_line_breaks() {
        let mut table = Table::new(["value"]);
        table.push(vec![Cell::Text("a\nb\tc".into())]);
        assert_eq!(render(&table, OutputFormat::Table), "value\na\\nb\\tc\n");
    }

    #[test]
    fn table_pads_past_format_width_limit() {
        let cells = ["abc".to_owned(), "z".to_owned()];
        let line = aligned_line(&cells, &[70_000, 1], &[false, false]);
        assert_eq!(line.len(), 70_000 + COLUMN_GAP.len() + 1 + "\n".len());
        assert!(line.starts_with("abc "), "{}", &line[..10]);

        let line = aligned_line(&cells[..1], &[70_000], &[true]);
        assert_eq!(line.len(), 70_000 + "\n".len());
        assert!(line.ends_with(" abc\n"));
    }

    #[test]
    fn table_shortens_long_cells() {
        let long = "a".repeat(70_000);
        let mut table = Table::new(["value", "n"]);
        table.push(vec![Cell::Text(long.clone()), Cell::Int(1)]);

        let text = render(&table, OutputFormat::Table);
        let expected_cell = format!("{}…(70000 bytes)", "a".repeat(MAX_TABLE_CELL_CHARS));
        assert_eq!(
            text.lines().nth(1),
            Some(format!("{expected_cell}  1").as_str())
        );

        let json = render(&table, OutputFormat::Json);
        assert_eq!(json, format!("{{\"value\":\"{long}\",\"n\":1}}\n"));
        let csv = render(&table, OutputFormat::Csv);
        assert_eq!(csv, format!("value,n\n{long},1\n"));
    }

    #[test]
    fn table_cell_length_boundaries() {
        let cases: &[(String, String)] = &[
            (
                "b".repeat(MAX_TABLE_CELL_CHARS),
                "b".repeat(MAX_TABLE_CELL_CHARS),
            ),
            (
                "b".repeat(MAX_TABLE_CELL_CHARS + 1),
                format!("{}…(257 bytes)", "b".repeat(MAX_TABLE_CELL_CHARS)),
            ),
            (
                "b".repeat(65_536),
                format!("{}…(65536 bytes)", "b".repeat(MAX_TABLE_CELL_CHARS)),
            ),
            (
                "é".repeat(300),
                format!("{}…(600 bytes)", "é".repeat(MAX_TABLE_CELL_CHARS)),
            ),
            (
                "\n".repeat(200),
                format!("{}…(200 bytes)", "\\n".repeat(MAX_TABLE_CELL_CHARS / 2)),
            ),
        ];
        for (cell, expected) in cases {
            let actual = table_text(&Cell::Text(cell.clone()));
            assert_eq!(actual.text, *expected, "cell of {} bytes", cell.len());
            assert_eq!(
                actual.shortened,
                expected.contains('…'),
                "cell of {} bytes",
                cell.len()
            );
        }
    }

    #[test]
    fn table_rounds_float_noise() {
        let cases: &[(f64, &str)] = &[
            (3.9970000000000003, "3.997"),
            (0.1 + 0.2, "0.3"),
            (2.5, "2.5"),
            (-1.0e-7, "-0.0000001"),
            (1.0e20, "100000000000000000000"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (number, expected) in cases {
            assert_eq!(table_text(&Cell::Float(*number)).text, *expected);
        }

        let mut table = Table::new(["p99.9"]);
        table.push(vec![Cell::Float(3.9970000000000003)]);
        assert_eq!(render(&table, OutputFormat::Table), "p99.9\n3.997\n");
        assert_eq!(
            render(&table, OutputFormat::Csv),
            "p99.9\n3.9970000000000003\n"
        );
        assert_eq!(
            render(&table, OutputFormat::Json),
            "{\"p99.9\":3.9970000000000003}\n"
        );
    }

    #[test]
    fn table_without_rows_prints_header() {
        let table = Table::new(["time", "value"]);
        assert_eq!(render(&table, OutputFormat::Table), "time  value\n");
    }

    #[test]
    fn json_lines_keep_types_and_order() {
        let text = render(&sample(), OutputFormat::Json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"name":"cpu","count":12,"tags":{"dc":"eu","host":"a"}}"#
        );
        assert_eq!(
            lines[1],
            r#"{"name":"memory, used","count":null,"tags":{}}"#
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn json_cells() {
        assert_eq!(Cell::Float(1.5).to_json().to_string(), "1.5");
        assert_eq!(Cell::Float(2.0).to_json().to_string(), "2.0");
        assert_eq!(
            Cell::Float(f64::INFINITY).to_json(),
            Json::String("inf".into())
        );
        assert_eq!(
            Cell::Float(f64::NEG_INFINITY).to_json(),
            Json::String("-inf".into())
        );
        assert_eq!(Cell::Float(f64::NAN).to_json(), Json::String("NaN".into()));
        assert_eq!(Cell::Empty.to_json(), Json::Null);
        assert_eq!(Cell::Int(-3).to_json().to_string(), "-3");
        assert_eq!(Cell::Bool(true).to_json().to_string(), "true");
        assert_eq!(Cell::Text("a\"b".into()).to_json().to_string(), r#""a\"b""#);
    }

    #[test]
    fn csv_quotes_when_needed() {
        let text = render(&sample(), OutputFormat::Csv);
        let expected = "name,count,tags\ncpu,12,\"dc=eu,host=a\"\n\"memory, used\",,\n";
        assert_eq!(text, expected);
        assert_eq!(
            csv_line(["say \"hi\"", "x\ny", "plain"]),
            "\"say \"\"hi\"\"\",\"x\ny\",plain"
        );
    }

    #[test]
    fn row_writer_table_uses_min_widths() {
        let mut out = Vec::new();
        let mut writer = RowWriter::new(
            &mut out,
            OutputFormat::Table,
            vec!["state".into(), "count".into()],
            &[7, 0],
        );
        writer
            .write_row(&[Cell::Text("FINAL".into()), Cell::UInt(3)])
            .unwrap();
        writer
            .write_row(&[Cell::Text("PARTIAL".into()), Cell::UInt(12345678)])
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected = "state    count\nFINAL        3\nPARTIAL  12345678\n";
        assert_eq!(text, expected);
    }

    #[test]
    fn row_writer_table_shortens_long_cells() {
        let mut out = Vec::new();
        let mut writer = RowWriter::new(
            &mut out,
            OutputFormat::Table,
            vec!["group".into(), "count".into()],
            &[],
        );
        writer
            .write_row(&[Cell::Text("h".repeat(70_000)), Cell::UInt(3)])
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let expected_cell = format!("{}…(70000 bytes)", "h".repeat(MAX_TABLE_CELL_CHARS));
        assert_eq!(
            text.lines().nth(1),
            Some(format!("{expected_cell}      3").as_str())
        );
    }

    #[test]
    fn row_writer_csv_header_once() {
        let mut out = Vec::new();
        let mut writer = RowWriter::new(
            &mut out,
            OutputFormat::Csv,
            vec!["a".into(), "b".into()],
            &[],
        );
        writer
            .write_row(&[Cell::Int(1), Cell::Text("x,y".into())])
            .unwrap();
        writer.write_row(&[Cell::Int(2), Cell::Empty]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a,b\n1,\"x,y\"\n2,\n");
    }

    #[test]
    fn row_writer_json_lines() {
        let mut out = Vec::new();
        let mut writer = RowWriter::new(&mut out, OutputFormat::Json, vec!["a".into()], &[]);
        writer.write_row(&[Cell::Int(1)]).unwrap();
        writer.write_raw_line(r#"{"kind":"gap"}"#).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":1}\n{\"kind\":\"gap\"}\n"
        );
    }

    #[test]
    fn time_formats() {
        let time_ns = 1_796_378_400_000_000_000;
        assert_eq!(format_time_nanos(time_ns), "2026-12-04T10:00:00.000000000Z");
        assert_eq!(
            format_time_nanos(time_ns + 5),
            "2026-12-04T10:00:00.000000005Z"
        );
        assert_eq!(format_time(time_ns, None), "2026-12-04T10:00:00Z");
        assert_eq!(
            format_time(time_ns + 1_500_000, None),
            "2026-12-04T10:00:00.001500Z"
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            format_time(time_ns, Some(berlin)),
            "2026-12-04T11:00:00+01:00"
        );
    }

    #[test]
    fn tags_cell_sorted() {
        let map: HashMap<String, String> = [("z", "1"), ("a", "2")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(Cell::tags(&map).to_text(), "a=2,z=1");
    }
}
