//! Parsers for command-line values: times, durations and aggregation names.
//!
//! Each parser returns a `String` error that names the rejected text and
//! lists the accepted forms, so clap can show it after the option name.

use std::time::Duration;

use chrono::DateTime;

use crate::clock;
use crate::proto::v1::{Aggregation, AggregationSpec};

/// Accepted forms of a time, for error messages.
pub const TIME_FORMS: &str = "an RFC 3339 time (2026-12-04T10:00:00Z), integer nanoseconds \
     since the Unix epoch, `now`, or a time relative to now (-1h, now-30m, +5m)";

/// Accepted forms of a duration, for error messages.
pub const DURATION_FORMS: &str = "a number and a unit (ns, us, ms, s, m, h, d or w), \
     for example 500ms, 10s, 1.5h or 1h30m";

/// Aggregation names and their functions. Percentiles (`pNN`) are parsed
/// separately.
const AGGREGATION_NAMES: &[(&str, Aggregation)] = &[
    ("sum", Aggregation::Sum),
    ("mean", Aggregation::Mean),
    ("median", Aggregation::Median),
    ("min", Aggregation::Min),
    ("max", Aggregation::Max),
    ("count", Aggregation::Count),
    ("stddev", Aggregation::StdDev),
    ("variance", Aggregation::Variance),
    ("rate", Aggregation::Rate),
    ("trend", Aggregation::Trend),
    ("first", Aggregation::First),
    ("last", Aggregation::Last),
    ("increase", Aggregation::Increase),
];

/// Duration units and their length in nanoseconds. `us` and `µs` are the
/// same unit.
const DURATION_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60 * 1_000_000_000),
    ("h", 3_600 * 1_000_000_000),
    ("d", 86_400 * 1_000_000_000),
    ("w", 7 * 86_400 * 1_000_000_000),
];

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Parses a duration such as `500ms`, `1.5h` or `1h30m`. A bare `0` is
/// accepted, but any other number needs a unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        |problem: &str| format!("invalid duration {text:?}: {problem}; expected {DURATION_FORMS}");

    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    if trimmed.starts_with('-') {
        return Err(invalid("durations cannot be negative"));
    }
    if trimmed == "0" {
        return Ok(Duration::ZERO);
    }

    let mut total_ns: u128 = 0;
    let mut rest = trimmed;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(invalid("each unit needs a number before it"));
        }
        let number = &rest[..number_len];
        rest = &rest[number_len..];

        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(invalid(&format!("the number {number} has no unit")));
        }
        let Some(&(_, unit_ns)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(invalid(&format!("unknown unit {unit:?}")));
        };

        let is_decimal =
            number.matches('.').count() <= 1 && number.chars().any(|c| c.is_ascii_digit());
        if !is_decimal {
            return Err(invalid(&format!("{number:?} is not a number")));
        }
        let term_ns = scale_decimal(number, unit_ns).ok_or_else(|| invalid("it is too long"))?;
        total_ns = total_ns
            .checked_add(term_ns)
            .ok_or_else(|| invalid("it is too long"))?;
    }

    let seconds =
        u64::try_from(total_ns / NANOS_PER_SECOND).map_err(|_| invalid("it is too long"))?;
    // The remainder is below one second, so it fits in u32.
    let nanos = (total_ns % NANOS_PER_SECOND) as u32;
    Ok(Duration::new(seconds, nanos))
}

/// Multiplies a decimal number such as `1.25` by `unit_ns` exactly, dropping
/// fractions of a nanosecond. The caller checks that `number` is digits
/// with at most one `.`, so `None` means that the result overflows.
fn scale_decimal(number: &str, unit_ns: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole_value: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut result = whole_value.checked_mul(unit_ns)?;

    // Digits past the 18th change the result by less than a nanosecond for
    // any unit here, and dropping them keeps fraction * unit inside u128.
    let fraction = &fraction[..fraction.len().min(18)];
    if !fraction.is_empty() {
        let fraction_value: u128 = fraction.parse().ok()?;
        let denominator = 10u128.pow(fraction.len() as u32);
        result = result.checked_add(fraction_value.checked_mul(unit_ns)? / denominator)?;
    }
    Some(result)
}

/// Formats a duration in the largest whole units, such as `1d2h` or
/// `1m30s`, so that [`parse_duration`] reads it back unchanged.
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }

    let mut remaining_ns = duration.as_nanos();
    let mut text = String::new();
    for (name, unit_ns) in [
        ("d", 86_400 * NANOS_PER_SECOND),
        ("h", 3_600 * NANOS_PER_SECOND),
        ("m", 60 * NANOS_PER_SECOND),
        ("s", NANOS_PER_SECOND),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        let count = remaining_ns / unit_ns;
        if count > 0 {
            text.push_str(&format!("{count}{name}"));
            remaining_ns %= unit_ns;
        }
    }
    text
}

/// Converts a duration to its protobuf form, saturating at the largest
/// protobuf duration.
pub fn to_proto_duration(duration: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(duration.as_secs()).unwrap_or(i64::MAX),
        // subsec_nanos() is below 10^9, so it fits in i32.
        nanos: duration.subsec_nanos() as i32,
    }
}

/// Converts a protobuf duration to a std one; negative durations become
/// zero because no field of the API carries them.
pub fn from_proto_duration(duration: &prost_types::Duration) -> Duration {
    if duration.seconds < 0 || duration.nanos < 0 {
        return Duration::ZERO;
    }
    Duration::new(duration.seconds as u64, duration.nanos as u32)
}

/// Parses a time given on the command line, resolving relative times
/// against the current clock.
pub fn parse_time_arg(text: &str) -> Result<i64, String> {
    parse_time(text, clock::now_ns())
}

/// Parses a time into nanoseconds since the Unix epoch. Relative times
/// (`now`, `-1h`, `now+5m`) are resolved against `now_ns`.
pub fn parse_time(text: &str, now_ns: i64) -> Result<i64, String> {
    let trimmed = text.trim();
    let out_of_range = || {
        format!(
            "time {text:?} is out of range; nanoseconds since the epoch must fit in a signed 64-bit integer"
        )
    };

    if trimmed.eq_ignore_ascii_case("now") {
        return Ok(now_ns);
    }

    let relative = match trimmed.get(..3) {
        Some(prefix) if prefix.eq_ignore_ascii_case("now") => Some(&trimmed[3..]),
        _ if is_relative_offset(trimmed) => Some(trimmed),
        _ => None,
    };
    if let Some(offset) = relative {
        let (sign, duration_text) = match offset.split_at_checked(1) {
            Some(("-", rest)) => (-1, rest),
            Some(("+", rest)) => (1, rest),
            _ => return Err(format!("invalid time {text:?}; expected {TIME_FORMS}")),
        };
        let duration =
            parse_duration(duration_text).map_err(|err| format!("invalid time {text:?}: {err}"))?;
        let offset_ns = i64::try_from(duration.as_nanos()).map_err(|_| out_of_range())?;
        return now_ns
            .checked_add(sign * offset_ns)
            .ok_or_else(out_of_range);
    }

    let digits = trimmed.strip_prefix(['-', '+']).unwrap_or(trimmed);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return trimmed.parse::<i64>().map_err(|_| out_of_range());
    }

    if let Ok(time) = DateTime::parse_from_rfc3339(trimmed) {
        return time.timestamp_nanos_opt().ok_or_else(out_of_range);
    }

    Err(format!("invalid time {text:?}; expected {TIME_FORMS}"))
}

/// Reports whether `text` is a signed duration such as `-1h`, as opposed
/// to a signed integer of nanoseconds such as `-5`.
fn is_relative_offset(text: &str) -> bool {
    match text.strip_prefix(['-', '+']) {
        Some(rest) => rest.chars().any(|c| c.is_alphabetic()),
        None => false,
    }
}

/// One `--agg` value: the protobuf spec and the column label shown in
/// output.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregationArg {
    pub spec: AggregationSpec,
    pub label: String,
}

/// Parses an aggregation name such as `mean`, `p99` or `p99.9`, ignoring
/// case.
pub fn parse_aggregation(text: &str) -> Result<AggregationArg, String> {
    let name = text.trim().to_ascii_lowercase();
    let accepted = || {
        let names: Vec<&str> = AGGREGATION_NAMES.iter().map(|(name, _)| *name).collect();
        format!(
            "{}, or pNN for a percentile (p50, p99, p99.9)",
            names.join(", ")
        )
    };

    if let Some(&(_, function)) = AGGREGATION_NAMES.iter().find(|(known, _)| *known == name) {
        return Ok(AggregationArg {
            spec: AggregationSpec {
                function: function as i32,
                percentile: 0.0,
            },
            label: name,
        });
    }

    if let Some(number) = name.strip_prefix('p') {
        let is_decimal = !number.is_empty()
            && !number.starts_with('.')
            && !number.ends_with('.')
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
            && number.matches('.').count() <= 1;
        if is_decimal {
            let percentile: f64 = number
                .parse()
                .map_err(|_| format!("invalid percentile {text:?}; expected pNN or pNN.N"))?;
            if percentile > 100.0 {
                return Err(format!(
                    "invalid percentile {text:?}: {percentile} is over 100; percentiles are in 0..=100"
                ));
            }
            return Ok(AggregationArg {
                spec: AggregationSpec {
                    function: Aggregation::Percentile as i32,
                    percentile,
                },
                label: name,
            });
        }
    }

    Err(format!(
        "unknown aggregation {text:?}; expected one of {}",
        accepted()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;
    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn duration_accepted_forms() {
        let cases: &[(&str, Duration)] = &[
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("1ns", Duration::from_nanos(1)),
            ("500us", Duration::from_micros(500)),
            ("500µs", Duration::from_micros(500)),
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("5m", Duration::from_secs(300)),
            ("2h", Duration::from_secs(7_200)),
            ("1d", Duration::from_secs(86_400)),
            ("2w", Duration::from_secs(14 * 86_400)),
            ("1h30m", Duration::from_secs(5_400)),
            ("1m0.5s", Duration::from_millis(60_500)),
            ("1.5h", Duration::from_secs(5_400)),
            ("0.25s", Duration::from_millis(250)),
            (".5s", Duration::from_millis(500)),
            ("1.0000000001s", Duration::new(1, 0)),
            (
                "1.000000000000000000000000000001w",
                Duration::from_secs(7 * 86_400),
            ),
            (" 10s ", Duration::from_secs(10)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(*expected), "input {text:?}");
        }
    }

    #[test]
    fn duration_rejected_forms() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("10", "has no unit"),
            ("-5s", "negative"),
            ("5x", "unknown unit \"x\""),
            ("5 s", "unknown unit \" s\""),
            ("s", "needs a number"),
            ("1..5s", "not a number"),
            ("1.2.3s", "not a number"),
            (".s", "not a number"),
            ("99999999999999999999999999999w", "too long"),
        ];
        for (text, problem) in cases {
            let err = parse_duration(text).unwrap_err();
            assert!(err.contains(problem), "input {text:?}: {err}");
            assert!(
                err.contains("expected a number and a unit"),
                "input {text:?}: {err}"
            );
        }
    }

    #[test]
    fn duration_formats_round_trip() {
        let cases: &[(Duration, &str)] = &[
            (Duration::ZERO, "0s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(86_400 + 3_600), "1d1h"),
            (Duration::from_secs(30 * 86_400), "30d"),
            (Duration::new(1, 1), "1s1ns"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(*duration), *text);
            assert_eq!(parse_duration(text), Ok(*duration), "reparse {text:?}");
        }
    }

    #[test]
    fn proto_duration_conversion() {
        let proto = to_proto_duration(Duration::new(90, 5));
        assert_eq!(proto.seconds, 90);
        assert_eq!(proto.nanos, 5);
        assert_eq!(from_proto_duration(&proto), Duration::new(90, 5));

        let negative = prost_types::Duration {
            seconds: -1,
            nanos: 0,
        };
        assert_eq!(from_proto_duration(&negative), Duration::ZERO);

        let huge = to_proto_duration(Duration::new(u64::MAX, 0));
        assert_eq!(huge.seconds, i64::MAX);
    }

    #[test]
    fn time_accepted_forms() {
        let cases: &[(&str, i64)] = &[
            ("now", NOW),
            ("NOW", NOW),
            ("-1h", NOW - 3_600 * SECOND),
            ("+5m", NOW + 300 * SECOND),
            ("now-30m", NOW - 1_800 * SECOND),
            ("now+1s", NOW + SECOND),
            ("-1h30m", NOW - 5_400 * SECOND),
            ("1234", 1_234),
            ("-5", -5),
            ("0", 0),
            ("2026-12-04T10:00:00Z", 1_796_378_400 * SECOND),
            ("2026-12-04T11:00:00+01:00", 1_796_378_400 * SECOND),
            ("2026-12-04T10:00:00.000000001Z", 1_796_378_400 * SECOND + 1),
            ("1970-01-01T00:00:00Z", 0),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_time(text, NOW), Ok(*expected), "input {text:?}");
        }
    }

    #[test]
    fn time_rejected_forms() {
        let cases: &[(&str, &str)] = &[
            ("yesterday", "expected an RFC 3339 time"),
            ("", "expected an RFC 3339 time"),
            ("2026-12-04", "expected an RFC 3339 time"),
            ("2026-12-04T10:00:00", "expected an RFC 3339 time"),
            ("now*2", "expected an RFC 3339 time"),
            ("-1x", "unknown unit"),
            ("99999999999999999999", "out of range"),
            ("2500-01-01T00:00:00Z", "out of range"),
            ("+300y", "unknown unit"),
            ("+1000000d", "out of range"),
        ];
        for (text, problem) in cases {
            let err = parse_time(text, NOW).unwrap_err();
            assert!(err.contains(problem), "input {text:?}: {err}");
            assert!(
                err.contains(&format!("{text:?}")),
                "input {text:?} not named: {err}"
            );
        }
    }

    #[test]
    fn aggregation_names() {
        let cases: &[(&str, Aggregation, &str)] = &[
            ("sum", Aggregation::Sum, "sum"),
            ("mean", Aggregation::Mean, "mean"),
            ("MEDIAN", Aggregation::Median, "median"),
            ("min", Aggregation::Min, "min"),
            ("max", Aggregation::Max, "max"),
            ("count", Aggregation::Count, "count"),
            ("stddev", Aggregation::StdDev, "stddev"),
            ("variance", Aggregation::Variance, "variance"),
            ("rate", Aggregation::Rate, "rate"),
            ("trend", Aggregation::Trend, "trend"),
            ("first", Aggregation::First, "first"),
            ("last", Aggregation::Last, "last"),
            ("increase", Aggregation::Increase, "increase"),
        ];
        for (text, function, label) in cases {
            let parsed = parse_aggregation(text).unwrap();
            assert_eq!(parsed.spec.function, *function as i32, "input {text:?}");
            assert_eq!(parsed.label, *label, "input {text:?}");
        }
    }

    #[test]
    fn aggregation_percentiles() {
        let cases: &[(&str, f64)] = &[
            ("p0", 0.0),
            ("p50", 50.0),
            ("p99", 99.0),
            ("P99.9", 99.9),
            ("p100", 100.0),
        ];
        for (text, percentile) in cases {
            let parsed = parse_aggregation(text).unwrap();
            assert_eq!(
                parsed.spec.function,
                Aggregation::Percentile as i32,
                "input {text:?}"
            );
            assert_eq!(parsed.spec.percentile, *percentile, "input {text:?}");
            assert_eq!(parsed.label, text.to_ascii_lowercase(), "input {text:?}");
        }
    }

    #[test]
    fn aggregation_rejected_names() {
        let cases: &[(&str, &str)] = &[
            ("avg", "unknown aggregation"),
            ("p", "unknown aggregation"),
            ("p.5", "unknown aggregation"),
            ("p5.", "unknown aggregation"),
            ("p1.2.3", "unknown aggregation"),
            ("p-1", "unknown aggregation"),
            ("p101", "over 100"),
        ];
        for (text, problem) in cases {
            let err = parse_aggregation(text).unwrap_err();
            assert!(err.contains(problem), "input {text:?}: {err}");
        }
        let err = parse_aggregation("avg").unwrap_err();
        assert!(err.contains("mean"), "accepted names missing: {err}");
        assert!(err.contains("pNN"), "percentile form missing: {err}");
    }
}
