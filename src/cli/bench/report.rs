//! Benchmark results: latency percentiles and the printed report.

use std::time::Duration;

use crate::cli::OutputFormat;
use crate::cli::output::{Cell, Table, print_table};

/// Latency samples of one kind of request.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    samples_ns: Vec<u64>,
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.samples_ns
            .push(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn record_ns(&mut self, latency_ns: u64) {
        self.samples_ns.push(latency_ns);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.samples_ns.extend(other.samples_ns);
    }

    pub fn len(&self) -> usize {
        self.samples_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples_ns.is_empty()
    }

    /// Returns the nearest-rank percentile `p` (0..=100) in milliseconds,
    /// or `None` without samples.
    pub fn percentile_ms(&mut self, p: f64) -> Option<f64> {
        if self.samples_ns.is_empty() {
            return None;
        }
        self.samples_ns.sort_unstable();
        let rank = ((p / 100.0) * self.samples_ns.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.samples_ns.len()) - 1;
        Some(self.samples_ns[index] as f64 / 1e6)
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.samples_ns.iter().max().map(|&ns| ns as f64 / 1e6)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        if self.samples_ns.is_empty() {
            return None;
        }
        let total: u128 = self.samples_ns.iter().map(|&ns| u128::from(ns)).sum();
        Some(total as f64 / self.samples_ns.len() as f64 / 1e6)
    }
}

/// Named measurements in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Report {
    entries: Vec<(String, Cell, &'static str)>,
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    /// Adds a measurement. `name` is a snake_case key, the JSON field name.
    pub fn add(&mut self, name: impl Into<String>, value: Cell, unit: &'static str) {
        self.entries.push((name.into(), value, unit));
    }

    pub fn text(&mut self, name: &str, value: impl Into<String>) {
        self.add(name, Cell::Text(value.into()), "");
    }

    pub fn count(&mut self, name: &str, value: u64) {
        self.add(name, Cell::UInt(value), "");
    }

    /// Adds a number rounded to three decimals, or an empty cell.
    pub fn number(&mut self, name: &str, value: Option<f64>, unit: &'static str) {
        let cell = value.map_or(Cell::Empty, |v| Cell::Float((v * 1000.0).round() / 1000.0));
        self.add(name, cell, unit);
    }

    /// Adds p50, p90, p99, max and mean of `latencies` under `prefix`.
    pub fn latencies(&mut self, prefix: &str, latencies: &mut Latencies) {
        self.count(&format!("{prefix}_samples"), latencies.len() as u64);
        for (label, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0)] {
            let value = latencies.percentile_ms(p);
            self.number(&format!("{prefix}_{label}"), value, "ms");
        }
        self.number(&format!("{prefix}_max"), latencies.max_ms(), "ms");
        self.number(&format!("{prefix}_mean"), latencies.mean_ms(), "ms");
    }

    pub fn get(&self, name: &str) -> Option<&Cell> {
        self.entries
            .iter()
            .find(|(entry, _, _)| entry == name)
            .map(|(_, cell, _)| cell)
    }

    /// Lays the report out for `format`: a vertical measure, value and unit
    /// table for reading, or one row with a column per measure for JSON and
    /// CSV, so a script gets one object per run.
    pub fn to_table(&self, format: OutputFormat) -> Table {
        match format {
            OutputFormat::Table => {
                let mut table = Table::new(["measure", "value", "unit"]);
                for (name, value, unit) in &self.entries {
                    table.push(vec![
                        Cell::Text(name.clone()),
                        value.clone(),
                        Cell::Text((*unit).to_owned()),
                    ]);
                }
                table
            }
            OutputFormat::Json | OutputFormat::Csv => {
                let mut table = Table::new(self.entries.iter().map(|(name, _, _)| name.clone()));
                table.push(
                    self.entries
                        .iter()
                        .map(|(_, cell, _)| cell.clone())
                        .collect(),
                );
                table
            }
        }
    }

    pub fn print(&self, format: OutputFormat) -> anyhow::Result<()> {
        print_table(&self.to_table(format), format)
    }
}

/// Returns `count / seconds`, or `None` for an empty interval.
pub fn per_second(count: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds > 0.0).then(|| count as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::output::render;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut latencies = Latencies::default();
        for ms in 1..=100 {
            latencies.record(Duration::from_millis(ms));
        }
        assert_eq!(latencies.percentile_ms(50.0), Some(50.0));
        assert_eq!(latencies.percentile_ms(99.0), Some(99.0));
        assert_eq!(latencies.percentile_ms(100.0), Some(100.0));
        assert_eq!(latencies.percentile_ms(0.0), Some(1.0));
        assert_eq!(latencies.max_ms(), Some(100.0));
        assert_eq!(latencies.mean_ms(), Some(50.5));
    }

    #[test]
    fn empty_latencies_have_no_percentiles() {
        let mut latencies = Latencies::default();
        assert_eq!(latencies.percentile_ms(50.0), None);
        assert_eq!(latencies.max_ms(), None);
        assert_eq!(latencies.mean_ms(), None);
    }

    #[test]
    fn report_json_is_one_object() {
        let mut report = Report::new();
        report.text("target", "tidemark");
        report.count("points", 10);
        report.number("points_per_second", Some(1.23456), "points/s");
        let json = render(&report.to_table(OutputFormat::Json), OutputFormat::Json);
        assert_eq!(
            json,
            "{\"target\":\"tidemark\",\"points\":10,\"points_per_second\":1.235}\n"
        );
        let table = render(&report.to_table(OutputFormat::Table), OutputFormat::Table);
        assert!(table.contains("points_per_second"), "{table}");
        assert!(table.contains("points/s"), "{table}");
    }
}
