//! Point filters: predicates on a point's value, time or tags.
//!
//! Tag filters are decided once per series, value and time filters once
//! per point. The query engine and the live window aggregator both use
//! [`FilterSet`], so a filter means the same in a query and in a
//! subscription.

use regex::Regex;

use super::limits::excerpt;
use super::{TagSet, TimeRange, TimestampNs, ValueKind, ValueRef};

/// Largest compiled regular expression a filter may use, in bytes.
const MAX_REGEX_SIZE_BYTES: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq)]
pub enum FilterField {
    Value,
    Time,
    Tag(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Like,
    Regex,
    Exists,
    NotExists,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    Str(String),
    F64(f64),
    I64(i64),
    Bool(bool),
}

impl std::fmt::Display for FilterField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterField::Value => f.write_str("\"value\""),
            FilterField::Time => f.write_str("\"time\""),
            FilterField::Tag(key) => write!(f, "{}", excerpt(&format!("tags.{key}"))),
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Operator::Eq => "EQ",
            Operator::Ne => "NE",
            Operator::Gt => "GT",
            Operator::Gte => "GTE",
            Operator::Lt => "LT",
            Operator::Lte => "LTE",
            Operator::In => "IN",
            Operator::Like => "LIKE",
            Operator::Regex => "REGEX",
            Operator::Exists => "EXISTS",
            Operator::NotExists => "NOT_EXISTS",
        };
        f.write_str(name)
    }
}

impl std::fmt::Display for Operand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operand::Str(v) => write!(f, "string {}", excerpt(v)),
            Operand::F64(v) => write!(f, "double {v}"),
            Operand::I64(v) => write!(f, "int {v}"),
            Operand::Bool(v) => write!(f, "bool {v}"),
        }
    }
}

impl Operand {
    fn as_f64(&self) -> Option<f64> {
        match *self {
            Operand::F64(v) => Some(v),
            Operand::I64(v) => Some(v as f64),
            Operand::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            Operand::Str(_) => None,
        }
    }
}

/// One validated filter.
#[derive(Debug, Clone)]
pub struct Filter {
    pub field: FilterField,
    pub op: Operator,
    pub operands: Vec<Operand>,
    /// Compiled pattern for `Regex`.
    regex: Option<Regex>,
    /// Lower-cased needle for `Like`.
    like_needle: Option<String>,
}

impl Filter {
    /// Validates and compiles a filter. `field` is `value`, `time` or
    /// `tags.<key>`; the error names the offending part.
    pub fn new(field: &str, op: Operator, operands: Vec<Operand>) -> Result<Filter, String> {
        let field = match field {
            "value" => FilterField::Value,
            "time" => FilterField::Time,
            other => match other.strip_prefix("tags.") {
                Some(key) if !key.is_empty() => FilterField::Tag(key.to_owned()),
                _ => {
                    return Err(format!(
                        "filter field {} is invalid; use \"value\", \"time\" or \"tags.<key>\"",
                        excerpt(other)
                    ));
                }
            },
        };

        let expected_operands = match op {
            Operator::Exists | Operator::NotExists => 0..=0,
            Operator::In => 1..=usize::MAX,
            _ => 1..=1,
        };
        if !expected_operands.contains(&operands.len()) {
            let wanted = match op {
                Operator::Exists | Operator::NotExists => "no values",
                Operator::In => "at least one value",
                _ => "exactly one value",
            };
            return Err(format!(
                "filter on {field} with operator {op} has {} values; it takes {wanted}",
                operands.len()
            ));
        }

        if matches!(op, Operator::Exists | Operator::NotExists)
            && !matches!(field, FilterField::Tag(_))
        {
            return Err(format!(
                "filter operator {op} applies only to tags.<key> fields, not to {field}"
            ));
        }

        for operand in &operands {
            if let Operand::F64(v) = operand
                && v.is_nan()
            {
                return Err(format!(
                    "filter on {field} has a NaN value; NaN is not comparable"
                ));
            }
            match (&field, operand) {
                (FilterField::Time, Operand::Str(_) | Operand::F64(_) | Operand::Bool(_)) => {
                    return Err(format!(
                        "filter on \"time\" has value {operand}; time filters take int values in nanoseconds since the Unix epoch"
                    ));
                }
                (FilterField::Tag(_), Operand::Str(_)) => {}
                (FilterField::Tag(_), other) => {
                    return Err(format!(
                        "filter on {field} has value {other}; tag filters take string values"
                    ));
                }
                _ => {}
            }
        }

        let mut regex = None;
        let mut like_needle = None;
        match op {
            Operator::Regex => {
                let Operand::Str(pattern) = &operands[0] else {
                    return Err(format!(
                        "filter on {field} with REGEX needs a string pattern"
                    ));
                };
                let compiled = regex::RegexBuilder::new(pattern)
                    .size_limit(MAX_REGEX_SIZE_BYTES)
                    .build()
                    .map_err(|e| {
                        format!(
                            "filter on {field} has an invalid regex {}: {e}",
                            excerpt(pattern)
                        )
                    })?;
                regex = Some(compiled);
            }
            Operator::Like => {
                let Operand::Str(needle) = &operands[0] else {
                    return Err(format!("filter on {field} with LIKE needs a string value"));
                };
                like_needle = Some(needle.to_lowercase());
            }
            _ => {}
        }

        Ok(Filter {
            field,
            op,
            operands,
            regex,
            like_needle,
        })
    }

    fn matches_str(&self, text: &str) -> bool {
        fn operand_str(operand: &Operand) -> Option<&str> {
            match operand {
                Operand::Str(s) => Some(s.as_str()),
                _ => None,
            }
        }
        match self.op {
            Operator::Eq => operand_str(&self.operands[0]) == Some(text),
            Operator::Ne => operand_str(&self.operands[0]) != Some(text),
            Operator::Gt => operand_str(&self.operands[0]).is_some_and(|o| text > o),
            Operator::Gte => operand_str(&self.operands[0]).is_some_and(|o| text >= o),
            Operator::Lt => operand_str(&self.operands[0]).is_some_and(|o| text < o),
            Operator::Lte => operand_str(&self.operands[0]).is_some_and(|o| text <= o),
            Operator::In => self.operands.iter().any(|o| operand_str(o) == Some(text)),
            Operator::Like => self
                .like_needle
                .as_deref()
                .is_some_and(|needle| text.to_lowercase().contains(needle)),
            Operator::Regex => self.regex.as_ref().is_some_and(|r| r.is_match(text)),
            Operator::Exists => true,
            Operator::NotExists => false,
        }
    }

    fn matches_f64(&self, value: f64) -> bool {
        let cmp = |operand: &Operand| operand.as_f64().and_then(|o| value.partial_cmp(&o));
        use std::cmp::Ordering::*;
        match self.op {
            Operator::Eq => cmp(&self.operands[0]) == Some(Equal),
            Operator::Ne => cmp(&self.operands[0]) != Some(Equal),
            Operator::Gt => cmp(&self.operands[0]) == Some(Greater),
            Operator::Gte => matches!(cmp(&self.operands[0]), Some(Greater | Equal)),
            Operator::Lt => cmp(&self.operands[0]) == Some(Less),
            Operator::Lte => matches!(cmp(&self.operands[0]), Some(Less | Equal)),
            Operator::In => self.operands.iter().any(|o| cmp(o) == Some(Equal)),
            // LIKE and REGEX apply to strings only, so numbers never match.
            Operator::Like | Operator::Regex => false,
            Operator::Exists => true,
            Operator::NotExists => false,
        }
    }

    fn matches_time(&self, time_ns: TimestampNs) -> bool {
        let operand = |o: &Operand| match *o {
            Operand::I64(v) => v,
            _ => unreachable!("time filters hold only int operands, checked in Filter::new"),
        };
        match self.op {
            Operator::Eq => time_ns == operand(&self.operands[0]),
            Operator::Ne => time_ns != operand(&self.operands[0]),
            Operator::Gt => time_ns > operand(&self.operands[0]),
            Operator::Gte => time_ns >= operand(&self.operands[0]),
            Operator::Lt => time_ns < operand(&self.operands[0]),
            Operator::Lte => time_ns <= operand(&self.operands[0]),
            Operator::In => self.operands.iter().any(|o| operand(o) == time_ns),
            Operator::Like | Operator::Regex => false,
            Operator::Exists => true,
            Operator::NotExists => false,
        }
    }
}

/// The conjunction of a request's filters, split by what they look at.
#[derive(Debug, Clone, Default)]
pub struct FilterSet {
    tag_filters: Vec<Filter>,
    point_filters: Vec<Filter>,
}

impl FilterSet {
    pub fn new(filters: Vec<Filter>) -> FilterSet {
        let (tag_filters, point_filters) = filters
            .into_iter()
            .partition(|f| matches!(f.field, FilterField::Tag(_)));
        FilterSet {
            tag_filters,
            point_filters,
        }
    }

    /// Reports whether a series passes every tag filter. NE and
    /// NOT_EXISTS match a series that lacks the key; every other operator
    /// needs the key to be present.
    pub fn matches_series(&self, tags: &TagSet) -> bool {
        self.tag_filters.iter().all(|filter| {
            let FilterField::Tag(key) = &filter.field else {
                return true;
            };
            match tags.get(key) {
                Some(value) => filter.matches_str(value),
                None => matches!(filter.op, Operator::Ne | Operator::NotExists),
            }
        })
    }

    /// True when no filter looks at single points, so every point of a
    /// matching series matches.
    pub fn has_point_filters(&self) -> bool {
        !self.point_filters.is_empty()
    }

    /// Reports whether a point passes every value and time filter. A
    /// number compared with a string operand (or the other way round) does
    /// not match, except under NE.
    pub fn matches_point(&self, time_ns: TimestampNs, value: ValueRef<'_>) -> bool {
        self.point_filters.iter().all(|filter| match filter.field {
            FilterField::Time => filter.matches_time(time_ns),
            FilterField::Value => match value {
                ValueRef::Str(text) => filter.matches_str(text),
                numeric => filter.matches_f64(numeric.as_f64().unwrap_or(f64::NAN)),
            },
            FilterField::Tag(_) => true,
        })
    }

    /// Checks that every value filter can match values of `kind`, the
    /// value column kind of the queried metric: numbers compare with
    /// numbers and strings with strings, and LIKE and REGEX need strings.
    pub fn check_value_kind(&self, kind: ValueKind) -> Result<(), String> {
        let numeric_metric = kind != ValueKind::Str;
        for filter in &self.point_filters {
            if filter.field != FilterField::Value {
                continue;
            }
            if numeric_metric && matches!(filter.op, Operator::Like | Operator::Regex) {
                return Err(format!(
                    "filter on \"value\" with operator {} needs string values, but the metric holds {} values",
                    filter.op,
                    kind.name()
                ));
            }
            for operand in &filter.operands {
                let numeric_operand = !matches!(operand, Operand::Str(_));
                if numeric_operand != numeric_metric {
                    return Err(format!(
                        "filter on \"value\" compares with {operand}, but the metric holds {} values; use a {} operand",
                        kind.name(),
                        if numeric_metric { "numeric" } else { "string" }
                    ));
                }
            }
        }
        Ok(())
    }

    /// Narrows a range by the time filters that bound it (GT, GTE, LT,
    /// LTE), so storage can skip points outside it.
    pub fn narrow_range(&self, range: TimeRange) -> TimeRange {
        let mut narrowed = range;
        for filter in &self.point_filters {
            if filter.field != FilterField::Time {
                continue;
            }
            let Some(Operand::I64(bound)) = filter.operands.first() else {
                continue;
            };
            let bound = *bound;
            match filter.op {
                Operator::Gt => narrowed.start_ns = narrowed.start_ns.max(bound.saturating_add(1)),
                Operator::Gte => narrowed.start_ns = narrowed.start_ns.max(bound),
                Operator::Lt => narrowed.end_ns = narrowed.end_ns.min(bound),
                Operator::Lte => narrowed.end_ns = narrowed.end_ns.min(bound.saturating_add(1)),
                _ => {}
            }
        }
        narrowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> TagSet {
        TagSet::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn s(v: &str) -> Operand {
        Operand::Str(v.to_string())
    }

    #[test]
    fn tag_filter_table() {
        let host_a = tags(&[("host", "a"), ("dc", "eu")]);
        let no_host = tags(&[("dc", "eu")]);
        let empty_host = tags(&[("host", "")]);

        let cases: Vec<(Operator, Vec<Operand>, &TagSet, bool)> = vec![
            (Operator::Eq, vec![s("a")], &host_a, true),
            (Operator::Eq, vec![s("a")], &no_host, false),
            (Operator::Eq, vec![s("")], &empty_host, true),
            (Operator::Eq, vec![s("")], &no_host, false),
            (Operator::Ne, vec![s("a")], &host_a, false),
            (Operator::Ne, vec![s("a")], &no_host, true),
            (Operator::Ne, vec![s("b")], &host_a, true),
            (Operator::Gt, vec![s("A")], &host_a, true),
            (Operator::Lt, vec![s("A")], &host_a, false),
            (Operator::Gt, vec![s("A")], &no_host, false),
            (Operator::In, vec![s("x"), s("a")], &host_a, true),
            (Operator::In, vec![s("x")], &host_a, false),
            (Operator::Like, vec![s("A")], &host_a, true),
            (Operator::Regex, vec![s("^a$")], &host_a, true),
            (Operator::Regex, vec![s("^b")], &host_a, false),
            (Operator::Exists, vec![], &host_a, true),
            (Operator::Exists, vec![], &no_host, false),
            (Operator::Exists, vec![], &empty_host, true),
            (Operator::NotExists, vec![], &host_a, false),
            (Operator::NotExists, vec![], &no_host, true),
        ];
        for (op, operands, series, expected) in cases {
            let filter = Filter::new("tags.host", op, operands.clone()).unwrap();
            let set = FilterSet::new(vec![filter]);
            assert_eq!(
                set.matches_series(series),
                expected,
                "{op:?} {operands:?} on {series}"
            );
        }
    }

    #[test]
    fn value_filter_table() {
        let cases: Vec<(Operator, Vec<Operand>, ValueRef, bool)> = vec![
            (
                Operator::Gt,
                vec![Operand::F64(1.5)],
                ValueRef::F64(2.0),
                true,
            ),
            (Operator::Gt, vec![Operand::I64(2)], ValueRef::I64(2), false),
            (Operator::Gte, vec![Operand::I64(2)], ValueRef::I64(2), true),
            (
                Operator::Eq,
                vec![Operand::Bool(true)],
                ValueRef::Bool(true),
                true,
            ),
            (
                Operator::Eq,
                vec![Operand::F64(1.0)],
                ValueRef::Bool(true),
                true,
            ),
            (
                Operator::Lt,
                vec![Operand::F64(0.0)],
                ValueRef::F64(f64::NEG_INFINITY),
                true,
            ),
            (Operator::Eq, vec![s("ok")], ValueRef::Str("ok"), true),
            (Operator::Eq, vec![s("1")], ValueRef::F64(1.0), false),
            (Operator::Ne, vec![s("1")], ValueRef::F64(1.0), true),
            (
                Operator::Like,
                vec![s("ERR")],
                ValueRef::Str("an error"),
                true,
            ),
            (
                Operator::In,
                vec![Operand::I64(1), Operand::I64(3)],
                ValueRef::I64(3),
                true,
            ),
        ];
        for (op, operands, value, expected) in cases {
            let filter = Filter::new("value", op, operands.clone()).unwrap();
            let set = FilterSet::new(vec![filter]);
            assert_eq!(
                set.matches_point(0, value),
                expected,
                "{op:?} {operands:?} on {value:?}"
            );
        }
    }

    #[test]
    fn time_filters_narrow_range() {
        let set = FilterSet::new(vec![
            Filter::new("time", Operator::Gte, vec![Operand::I64(10)]).unwrap(),
            Filter::new("time", Operator::Lt, vec![Operand::I64(20)]).unwrap(),
        ]);
        assert_eq!(set.narrow_range(TimeRange::ALL), TimeRange::new(10, 20));
        assert!(set.matches_point(10, ValueRef::I64(0)));
        assert!(!set.matches_point(20, ValueRef::I64(0)));
    }

    #[test]
    fn invalid_filters_rejected() {
        assert!(Filter::new("tags.", Operator::Eq, vec![s("a")]).is_err());
        assert!(Filter::new("host", Operator::Eq, vec![s("a")]).is_err());
        assert!(Filter::new("value", Operator::Exists, vec![]).is_err());
        assert!(Filter::new("value", Operator::Eq, vec![]).is_err());
        assert!(Filter::new("time", Operator::Eq, vec![s("now")]).is_err());
        assert!(Filter::new("tags.a", Operator::Eq, vec![Operand::I64(1)]).is_err());
        assert!(Filter::new("tags.a", Operator::Regex, vec![s("(")]).is_err());
        assert!(Filter::new("value", Operator::Eq, vec![Operand::F64(f64::NAN)]).is_err());
    }
}
