//! Deterministic generation of benchmark points and their encodings: the
//! tidemark ingest messages (columnar `SeriesPoints` or one `Point` per
//! point) and VictoriaMetrics' JSON-lines import format.
//!
//! Every series draws its values from its own random generator seeded
//! from `--seed` and the series number, so the points do not depend on the
//! number of streams or the message size. Two loads with the same layout
//! therefore write the same points, whichever target they go to.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::proto::v1::{Point, SeriesPoints, StreamPointsRequest, point};

/// Number of distinct values of the `group` tag.
pub const GROUP_COUNT: usize = 10;

/// Number of distinct values of each tag after `host` and `group`.
const OTHER_TAG_VALUES: usize = 100;

/// Value pattern of generated points.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Doubles that stay near a per-series level, with two decimals of
    /// noise: a typical sampled gauge.
    Gauge,
    /// Uniformly random doubles with all 53 bits of mantissa used.
    Random,
    /// Integers that grow by 0 to 99 per point and reset to zero about
    /// once every 5,000 points.
    Counter,
    /// Booleans, true 95% of the time.
    Bool,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Gauge => "gauge",
            Shape::Random => "random",
            Shape::Counter => "counter",
            Shape::Bool => "bool",
        }
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small generator whose
/// output is fixed by its seed on every platform and version, which keeps
/// benchmark data reproducible.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Returns a double in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns an integer in [0, bound). The modulo bias is negligible for
    /// the small bounds used here.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }
}

/// Tags of series number `index`: `host` is unique per series, `group`
/// has [`GROUP_COUNT`] values (the default group-by tag), and any further
/// tags `tag2`, `tag3`, ... have 100 values each.
pub fn series_tags(index: usize, tags_per_series: usize) -> Vec<(String, String)> {
    let mut tags = Vec::with_capacity(tags_per_series);
    for position in 0..tags_per_series {
        let pair = match position {
            0 => ("host".to_owned(), format!("host-{index}")),
            1 => ("group".to_owned(), format!("g{}", index % GROUP_COUNT)),
            _ => (
                format!("tag{position}"),
                format!("v{}", (index + position) % OTHER_TAG_VALUES),
            ),
        };
        tags.push(pair);
    }
    tags
}

/// Values of one run of points.
#[derive(Debug, Clone, PartialEq)]
pub enum RunValues {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl RunValues {
    fn with_capacity(shape: Shape, capacity: usize) -> RunValues {
        match shape {
            Shape::Gauge | Shape::Random => RunValues::F64(Vec::with_capacity(capacity)),
            Shape::Counter => RunValues::I64(Vec::with_capacity(capacity)),
            Shape::Bool => RunValues::Bool(Vec::with_capacity(capacity)),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            RunValues::F64(v) => v.len(),
            RunValues::I64(v) => v.len(),
            RunValues::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Consecutive points of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Series number, an index into [`SeriesSet::tags`].
    pub series: usize,
    pub times_ns: Vec<i64>,
    pub values: RunValues,
}

impl Run {
    pub fn len(&self) -> usize {
        self.times_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times_ns.is_empty()
    }
}

/// The points of one request message, as runs of series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Message {
    pub runs: Vec<Run>,
}

impl Message {
    pub fn point_count(&self) -> usize {
        self.runs.iter().map(Run::len).sum()
    }
}

/// Value state of one series.
#[derive(Debug, Clone)]
struct SeriesState {
    rng: SplitMix64,
    /// Gauge level in hundredths.
    level_hundredths: i64,
    counter: i64,
}

impl SeriesState {
    fn new(seed: u64, index: usize) -> SeriesState {
        // Mixing the index through one SplitMix64 step gives unrelated
        // streams for neighbouring series.
        let mut rng = SplitMix64::new(seed ^ SplitMix64::new(index as u64).next_u64());
        let level_hundredths = 1_000 + rng.below(9_000) as i64;
        let counter = rng.below(1_000_000) as i64;
        SeriesState {
            rng,
            level_hundredths,
            counter,
        }
    }

    fn push_value(&mut self, shape: Shape, values: &mut RunValues) {
        match (shape, values) {
            (Shape::Gauge, RunValues::F64(v)) => {
                let noise = self.rng.below(101) as i64 - 50;
                v.push((self.level_hundredths + noise) as f64 / 100.0);
            }
            (Shape::Random, RunValues::F64(v)) => v.push(self.rng.next_f64() * 1_000.0),
            (Shape::Counter, RunValues::I64(v)) => {
                if self.rng.below(5_000) == 0 {
                    self.counter = 0;
                } else {
                    self.counter += self.rng.below(100) as i64;
                }
                v.push(self.counter);
            }
            (Shape::Bool, RunValues::Bool(v)) => v.push(self.rng.below(100) < 95),
            (shape, values) => unreachable!("shape {shape:?} cannot fill {values:?}"),
        }
    }
}

/// The series of a benchmark: their tags and value generators.
#[derive(Debug, Clone)]
pub struct SeriesSet {
    pub metric: String,
    pub shape: Shape,
    /// Tags of each series, sorted by key.
    pub tags: Vec<Vec<(String, String)>>,
    states: Vec<SeriesState>,
}

impl SeriesSet {
    pub fn new(
        metric: &str,
        shape: Shape,
        series: usize,
        tags_per_series: usize,
        seed: u64,
    ) -> SeriesSet {
        let tags = (0..series)
            .map(|index| {
                let mut tags = series_tags(index, tags_per_series);
                tags.sort();
                tags
            })
            .collect();
        let states = (0..series)
            .map(|index| SeriesState::new(seed, index))
            .collect();
        SeriesSet {
            metric: metric.to_owned(),
            shape,
            tags,
            states,
        }
    }

    pub fn len(&self) -> usize {
        self.tags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// Generates a run of series `series` at the given times.
    pub fn run(&mut self, series: usize, times_ns: Vec<i64>) -> Run {
        let mut values = RunValues::with_capacity(self.shape, times_ns.len());
        let state = &mut self.states[series];
        for _ in 0..times_ns.len() {
            state.push_value(self.shape, &mut values);
        }
        Run {
            series,
            times_ns,
            values,
        }
    }

    fn tag_map(&self, series: usize) -> HashMap<String, String> {
        self.tags[series].iter().cloned().collect()
    }

    /// Encodes a message with one `SeriesPoints` per run.
    pub fn columnar_request(&self, message: &Message) -> StreamPointsRequest {
        let series = message
            .runs
            .iter()
            .map(|run| {
                let mut entry = SeriesPoints {
                    metric: self.metric.clone(),
                    tags: self.tag_map(run.series),
                    times_unix_nano: run.times_ns.clone(),
                    ..SeriesPoints::default()
                };
                match &run.values {
                    RunValues::F64(v) => entry.double_values = v.clone(),
                    RunValues::I64(v) => entry.int_values = v.clone(),
                    RunValues::Bool(v) => entry.bool_values = v.clone(),
                }
                entry
            })
            .collect();
        StreamPointsRequest {
            points: Vec::new(),
            series,
        }
    }

    /// Encodes a message with one `Point` per point, each carrying its
    /// metric name and tags.
    pub fn points_request(&self, message: &Message) -> StreamPointsRequest {
        let mut points = Vec::with_capacity(message.point_count());
        for run in &message.runs {
            let tags = self.tag_map(run.series);
            for (i, &time_ns) in run.times_ns.iter().enumerate() {
                let value = match &run.values {
                    RunValues::F64(v) => point::Value::DoubleValue(v[i]),
                    RunValues::I64(v) => point::Value::IntValue(v[i]),
                    RunValues::Bool(v) => point::Value::BoolValue(v[i]),
                };
                points.push(Point {
                    metric: self.metric.clone(),
                    time_unix_nano: time_ns,
                    value: Some(value),
                    tags: tags.clone(),
                });
            }
        }
        StreamPointsRequest {
            points,
            series: Vec::new(),
        }
    }

    /// Encodes a message as VictoriaMetrics JSON lines for
    /// `/api/v1/import`, one line per run. VictoriaMetrics keeps
    /// millisecond timestamps, so the nanoseconds are truncated, and it
    /// stores every value as a double, so booleans become 1 and 0.
    pub fn victoria_metrics_lines(&self, message: &Message) -> String {
        let mut text = String::with_capacity(message.point_count() * 32);
        for run in &message.runs {
            let mut labels = serde_json::Map::new();
            labels.insert("__name__".to_owned(), self.metric.clone().into());
            for (key, value) in &self.tags[run.series] {
                labels.insert(key.clone(), value.clone().into());
            }
            text.push_str("{\"metric\":");
            text.push_str(&serde_json::Value::Object(labels).to_string());
            text.push_str(",\"values\":[");
            for i in 0..run.len() {
                if i > 0 {
                    text.push(',');
                }
                // Writing to a String cannot fail.
                let _ = match &run.values {
                    RunValues::F64(v) => write!(text, "{}", v[i]),
                    RunValues::I64(v) => write!(text, "{}", v[i]),
                    RunValues::Bool(v) => write!(text, "{}", u8::from(v[i])),
                };
            }
            text.push_str("],\"timestamps\":[");
            for (i, &time_ns) in run.times_ns.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{}", time_ns.div_euclid(1_000_000));
            }
            text.push_str("]}\n");
        }
        text
    }
}

/// Placement of a fixed number of historical points in time, streams
/// and messages.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    pub series: usize,
    pub total_points: u64,
    pub points_per_message: usize,
    /// Points of one series sent one after another inside a message.
    pub run_length: usize,
    pub streams: usize,
    pub start_ns: i64,
    pub interval_ns: i64,
}

impl Layout {
    /// Points of series `index`: the total spread evenly, with the first
    /// `total % series` series getting one more.
    pub fn points_of_series(&self, index: usize) -> u64 {
        let series = self.series as u64;
        self.total_points / series + u64::from((index as u64) < self.total_points % series)
    }

    /// Points per series of the series with the most points.
    pub fn max_points_per_series(&self) -> u64 {
        self.points_of_series(0)
    }

    /// End of the time range that contains every point, exclusive.
    pub fn end_ns(&self) -> i64 {
        self.start_ns + self.max_points_per_series() as i64 * self.interval_ns
    }

    /// Generates the messages of one stream and hands each to `sink`.
    ///
    /// Stream `stream` owns the series whose number modulo `streams` is
    /// `stream`, so each series' points arrive in time order on one
    /// stream, as from one scraper. Time advances in blocks of
    /// `run_length` points; within a block, each owned series contributes
    /// one run. Messages hold exactly `points_per_message` points, the last
    /// one excepted, so a run may continue in the next message.
    pub fn generate_stream(
        &self,
        set: &mut SeriesSet,
        stream: usize,
        mut sink: impl FnMut(Message),
    ) {
        let owned: Vec<usize> = (stream..self.series).step_by(self.streams).collect();
        let longest = owned
            .iter()
            .map(|&index| self.points_of_series(index))
            .max()
            .unwrap_or(0);
        let run_length = self.run_length.max(1) as u64;
        let per_message = self.points_per_message.max(1);

        let mut message = Message::default();
        let mut room = per_message;
        let mut block_start = 0u64;
        while block_start < longest {
            for &index in &owned {
                let end = (block_start + run_length).min(self.points_of_series(index));
                let mut from = block_start;
                while from < end {
                    let to = end.min(from + room as u64);
                    let times = (from..to)
                        .map(|k| self.start_ns + k as i64 * self.interval_ns)
                        .collect();
                    message.runs.push(set.run(index, times));
                    room -= (to - from) as usize;
                    from = to;
                    if room == 0 {
                        sink(std::mem::take(&mut message));
                        room = per_message;
                    }
                }
            }
            block_start += run_length;
        }
        if !message.runs.is_empty() {
            sink(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(total_points: u64, streams: usize, per_message: usize) -> Layout {
        Layout {
            series: 7,
            total_points,
            points_per_message: per_message,
            run_length: 4,
            streams,
            start_ns: 1_000,
            interval_ns: 10,
        }
    }

    /// Collects (series, time, value) of every point of every stream.
    fn all_points(layout: &Layout, shape: Shape) -> Vec<(usize, i64, String)> {
        let mut set = SeriesSet::new("m", shape, layout.series, 3, 42);
        let mut points = Vec::new();
        for stream in 0..layout.streams {
            layout.generate_stream(&mut set, stream, |message| {
                assert!(message.point_count() <= layout.points_per_message);
                for run in message.runs {
                    for (i, time) in run.times_ns.iter().enumerate() {
                        let value = match &run.values {
                            RunValues::F64(v) => v[i].to_string(),
                            RunValues::I64(v) => v[i].to_string(),
                            RunValues::Bool(v) => v[i].to_string(),
                        };
                        points.push((run.series, *time, value));
                    }
                }
            });
        }
        points.sort_by_key(|a| (a.0, a.1));
        points
    }

    #[test]
    fn layout_generates_every_point_once() {
        let layout = layout(100, 3, 9);
        let points = all_points(&layout, Shape::Gauge);
        assert_eq!(points.len(), 100);
        let mut keys: Vec<(usize, i64)> = points.iter().map(|p| (p.0, p.1)).collect();
        keys.dedup();
        assert_eq!(keys.len(), 100);
        assert_eq!(layout.points_of_series(0), 15);
        assert_eq!(layout.points_of_series(1), 15);
        assert_eq!(layout.points_of_series(2), 14);
        assert_eq!(layout.end_ns(), 1_000 + 15 * 10);
    }

    #[test]
    fn points_independent_of_streams_and_message_size() {
        for shape in [Shape::Gauge, Shape::Random, Shape::Counter, Shape::Bool] {
            let one = all_points(&layout(200, 1, 1000), shape);
            let many = all_points(&layout(200, 4, 13), shape);
            assert_eq!(one, many, "shape {shape:?}");
        }
    }

    #[test]
    fn series_times_ascend_within_a_stream() {
        let layout = layout(300, 2, 11);
        let mut set = SeriesSet::new("m", Shape::Counter, layout.series, 1, 1);
        let mut last: HashMap<usize, i64> = HashMap::new();
        layout.generate_stream(&mut set, 1, |message| {
            for run in message.runs {
                assert_eq!(run.series % 2, 1, "series {} on stream 1", run.series);
                for &time in &run.times_ns {
                    let previous = last.insert(run.series, time);
                    assert!(previous.is_none_or(|p| p < time));
                }
            }
        });
    }

    #[test]
    fn gauge_values_have_two_decimals() {
        let mut set = SeriesSet::new("m", Shape::Gauge, 1, 1, 5);
        let run = set.run(0, (0..1000).collect());
        let RunValues::F64(values) = run.values else {
            panic!("gauge produced {:?}", run.values);
        };
        for value in values {
            let hundredths = value * 100.0;
            assert!((hundredths - hundredths.round()).abs() < 1e-6, "{value}");
            assert!((9.5..=100.5).contains(&value), "{value}");
        }
    }

    #[test]
    fn counter_increases_between_resets() {
        let mut set = SeriesSet::new("m", Shape::Counter, 1, 1, 9);
        let run = set.run(0, (0..20_000).collect());
        let RunValues::I64(values) = run.values else {
            panic!("counter produced {:?}", run.values);
        };
        let resets = values.windows(2).filter(|w| w[1] < w[0]).count();
        let zeros_after_drop = values.windows(2).filter(|w| w[1] < w[0] && w[1] == 0);
        assert_eq!(zeros_after_drop.count(), resets);
        assert!(resets >= 1, "no reset in 20,000 points");
        assert!(resets <= 20, "{resets} resets in 20,000 points");
    }

    #[test]
    fn tags_have_expected_cardinality() {
        let tags = series_tags(23, 4);
        assert_eq!(
            tags,
            vec![
                ("host".to_owned(), "host-23".to_owned()),
                ("group".to_owned(), "g3".to_owned()),
                ("tag2".to_owned(), "v25".to_owned()),
                ("tag3".to_owned(), "v26".to_owned()),
            ]
        );
    }

    #[test]
    fn victoria_metrics_lines_format() {
        let mut set = SeriesSet::new("cpu", Shape::Bool, 2, 2, 3);
        let run = set.run(1, vec![1_500_000_000, 2_500_000_000]);
        let text = set.victoria_metrics_lines(&Message { runs: vec![run] });
        assert_eq!(text.lines().count(), 1);
        let line: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["metric"]["__name__"], "cpu");
        assert_eq!(line["metric"]["host"], "host-1");
        assert_eq!(line["metric"]["group"], "g1");
        assert_eq!(line["timestamps"], serde_json::json!([1500, 2500]));
        assert_eq!(line["values"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn points_request_carries_tags_per_point() {
        let mut set = SeriesSet::new("cpu", Shape::Random, 1, 3, 3);
        let run = set.run(0, vec![1, 2, 3]);
        let message = Message { runs: vec![run] };
        let request = set.points_request(&message);
        assert_eq!(request.points.len(), 3);
        assert!(request.series.is_empty());
        assert_eq!(request.points[2].tags.len(), 3);
        assert_eq!(request.points[2].time_unix_nano, 3);

        let columnar = set.columnar_request(&message);
        assert_eq!(columnar.series.len(), 1);
        assert_eq!(columnar.series[0].double_values.len(), 3);
    }
}
