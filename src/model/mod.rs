//! The data model shared by every engine component: metrics, series, tag
//! sets, values and write batches.
//!
//! A series is a metric name plus a sorted tag set. Points of one series
//! are stored as a time column and one value column whose kind follows the
//! metric's data type. No type here depends on gRPC: the adapters in
//! `crate::grpc` convert protobuf messages into these types after
//! validating them against [`limits::Limits`].

pub mod filter;
pub mod limits;

use std::fmt;
use std::sync::Arc;

/// Nanoseconds since the Unix epoch, UTC.
pub type TimestampNs = i64;

/// Identifier of one series inside a storage engine, unique for the
/// engine's lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId(pub u64);

impl fmt::Display for SeriesId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Half-open time range `[start_ns, end_ns)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_ns: TimestampNs,
    pub end_ns: TimestampNs,
}

impl TimeRange {
    /// The range that contains every representable timestamp but `i64::MAX`.
    pub const ALL: TimeRange = TimeRange {
        start_ns: i64::MIN,
        end_ns: i64::MAX,
    };

    pub fn new(start_ns: TimestampNs, end_ns: TimestampNs) -> Self {
        TimeRange { start_ns, end_ns }
    }

    pub fn contains(&self, time_ns: TimestampNs) -> bool {
        self.start_ns <= time_ns && time_ns < self.end_ns
    }

    pub fn is_empty(&self) -> bool {
        self.start_ns >= self.end_ns
    }

    /// Returns the overlap of two ranges, which may be empty.
    pub fn intersect(&self, other: &TimeRange) -> TimeRange {
        TimeRange {
            start_ns: self.start_ns.max(other.start_ns),
            end_ns: self.end_ns.min(other.end_ns),
        }
    }
}

/// Declared type of a metric. It decides which value kinds a point may
/// carry and how the values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataType {
    Integer,
    Float,
    Boolean,
    String,
    Duration,
    Percentage,
    Rate,
}

impl DataType {
    /// Infers a metric's type from the first value written to it.
    pub fn inferred_from(kind: ValueKind) -> DataType {
        match kind {
            ValueKind::F64 => DataType::Float,
            ValueKind::I64 => DataType::Integer,
            ValueKind::Bool => DataType::Boolean,
            ValueKind::Str => DataType::String,
        }
    }

    /// Column kind that stores this type's values.
    pub fn column_kind(self) -> ValueKind {
        match self {
            DataType::Integer => ValueKind::I64,
            DataType::Float | DataType::Duration | DataType::Percentage | DataType::Rate => {
                ValueKind::F64
            }
            DataType::Boolean => ValueKind::Bool,
            DataType::String => ValueKind::Str,
        }
    }

    /// Reports whether a value of `kind` fits this type. Integers fit the
    /// floating-point types and are stored as doubles.
    pub fn accepts(self, kind: ValueKind) -> bool {
        match self.column_kind() {
            ValueKind::F64 => matches!(kind, ValueKind::F64 | ValueKind::I64),
            column => column == kind,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DataType::Integer => "INTEGER",
            DataType::Float => "FLOAT",
            DataType::Boolean => "BOOLEAN",
            DataType::String => "STRING",
            DataType::Duration => "DURATION",
            DataType::Percentage => "PERCENTAGE",
            DataType::Rate => "RATE",
        }
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Kind of a single value as written by a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueKind {
    F64,
    I64,
    Bool,
    Str,
}

impl ValueKind {
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::F64 => "double",
            ValueKind::I64 => "int",
            ValueKind::Bool => "bool",
            ValueKind::Str => "string",
        }
    }
}

/// One owned value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(Arc<str>),
}

impl Value {
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::F64(_) => ValueKind::F64,
            Value::I64(_) => ValueKind::I64,
            Value::Bool(_) => ValueKind::Bool,
            Value::Str(_) => ValueKind::Str,
        }
    }

    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::F64(v) => ValueRef::F64(*v),
            Value::I64(v) => ValueRef::I64(*v),
            Value::Bool(v) => ValueRef::Bool(*v),
            Value::Str(v) => ValueRef::Str(v),
        }
    }
}

/// One borrowed value, as handed to filters and aggregators.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    F64(f64),
    I64(i64),
    Bool(bool),
    Str(&'a str),
}

impl ValueRef<'_> {
    /// Numeric view used by aggregations: booleans are 1 or 0 and strings
    /// have none.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ValueRef::F64(v) => Some(v),
            ValueRef::I64(v) => Some(v as f64),
            ValueRef::Bool(v) => Some(if v { 1.0 } else { 0.0 }),
            ValueRef::Str(_) => None,
        }
    }

    pub fn to_owned(&self) -> Value {
        match *self {
            ValueRef::F64(v) => Value::F64(v),
            ValueRef::I64(v) => Value::I64(v),
            ValueRef::Bool(v) => Value::Bool(v),
            ValueRef::Str(v) => Value::Str(Arc::from(v)),
        }
    }
}

/// A column of values of one kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<Arc<str>>),
}

impl Column {
    pub fn empty(kind: ValueKind) -> Column {
        match kind {
            ValueKind::F64 => Column::F64(Vec::new()),
            ValueKind::I64 => Column::I64(Vec::new()),
            ValueKind::Bool => Column::Bool(Vec::new()),
            ValueKind::Str => Column::Str(Vec::new()),
        }
    }

    pub fn kind(&self) -> ValueKind {
        match self {
            Column::F64(_) => ValueKind::F64,
            Column::I64(_) => ValueKind::I64,
            Column::Bool(_) => ValueKind::Bool,
            Column::Str(_) => ValueKind::Str,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::F64(v) => v.len(),
            Column::I64(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> ValueRef<'_> {
        self.as_slice().get(index)
    }

    pub fn as_slice(&self) -> ColumnSlice<'_> {
        match self {
            Column::F64(v) => ColumnSlice::F64(v),
            Column::I64(v) => ColumnSlice::I64(v),
            Column::Bool(v) => ColumnSlice::Bool(v),
            Column::Str(v) => ColumnSlice::Str(v),
        }
    }

    /// Appends one value. The caller guarantees that the kinds match,
    /// except that an integer may go into a double column.
    pub fn push(&mut self, value: ValueRef<'_>) {
        match (self, value) {
            (Column::F64(c), ValueRef::F64(v)) => c.push(v),
            (Column::F64(c), ValueRef::I64(v)) => c.push(v as f64),
            (Column::I64(c), ValueRef::I64(v)) => c.push(v),
            (Column::Bool(c), ValueRef::Bool(v)) => c.push(v),
            (Column::Str(c), ValueRef::Str(v)) => c.push(Arc::from(v)),
            (column, value) => panic!(
                "column of kind {:?} cannot hold a value of kind {:?}",
                column.kind(),
                value
            ),
        }
    }

    /// Splits the column at `at`, keeping `[0, at)` and returning the rest.
    pub fn split_off(&mut self, at: usize) -> Column {
        match self {
            Column::F64(v) => Column::F64(v.split_off(at)),
            Column::I64(v) => Column::I64(v.split_off(at)),
            Column::Bool(v) => Column::Bool(v.split_off(at)),
            Column::Str(v) => Column::Str(v.split_off(at)),
        }
    }

    /// Converts an integer column to doubles; other columns are returned
    /// unchanged.
    pub fn into_kind(self, kind: ValueKind) -> Column {
        match (self, kind) {
            (Column::I64(v), ValueKind::F64) => {
                Column::F64(v.into_iter().map(|x| x as f64).collect())
            }
            (column, _) => column,
        }
    }
}

/// A borrowed run of values of one kind.
#[derive(Debug, Clone, Copy)]
pub enum ColumnSlice<'a> {
    F64(&'a [f64]),
    I64(&'a [i64]),
    Bool(&'a [bool]),
    Str(&'a [Arc<str>]),
}

impl<'a> ColumnSlice<'a> {
    pub fn len(&self) -> usize {
        match self {
            ColumnSlice::F64(v) => v.len(),
            ColumnSlice::I64(v) => v.len(),
            ColumnSlice::Bool(v) => v.len(),
            ColumnSlice::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> ValueRef<'a> {
        match *self {
            ColumnSlice::F64(v) => ValueRef::F64(v[index]),
            ColumnSlice::I64(v) => ValueRef::I64(v[index]),
            ColumnSlice::Bool(v) => ValueRef::Bool(v[index]),
            ColumnSlice::Str(v) => ValueRef::Str(&v[index]),
        }
    }

    pub fn slice(&self, from: usize, to: usize) -> ColumnSlice<'a> {
        match *self {
            ColumnSlice::F64(v) => ColumnSlice::F64(&v[from..to]),
            ColumnSlice::I64(v) => ColumnSlice::I64(&v[from..to]),
            ColumnSlice::Bool(v) => ColumnSlice::Bool(&v[from..to]),
            ColumnSlice::Str(v) => ColumnSlice::Str(&v[from..to]),
        }
    }
}

/// Tags of a series, sorted by key with unique keys. Shared on clone, so
/// the many write entries of one series cost one copy of its tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TagSet(Arc<Vec<(String, String)>>);

impl TagSet {
    /// Builds a tag set from pairs in any order. A repeated key keeps the
    /// last value.
    pub fn from_pairs(mut pairs: Vec<(String, String)>) -> TagSet {
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        TagSet(Arc::new(unique))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.0[i].1.as_str())
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl fmt::Display for TagSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// Group key of an aggregation: for each group-by tag in request order,
/// the tag's value or `None` when the point lacks the tag.
pub type GroupKey = Vec<Option<String>>;

/// Builds the group key of a series for the given group-by tags.
pub fn group_key(tags: &TagSet, group_by: &[String]) -> GroupKey {
    group_by
        .iter()
        .map(|key| tags.get(key).map(str::to_owned))
        .collect()
}

/// Points of one series inside a write batch, already validated.
#[derive(Debug, Clone)]
pub struct SeriesWrite {
    pub metric: String,
    pub tags: TagSet,
    /// Position of the first point in the client's stream, used to report
    /// rejections; the points that follow have consecutive positions.
    pub first_index: u64,
    pub times_ns: Vec<TimestampNs>,
    pub values: Column,
}

impl SeriesWrite {
    pub fn len(&self) -> usize {
        self.times_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times_ns.is_empty()
    }
}

/// The unit of ingest: the validated points of one request message.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub series: Vec<SeriesWrite>,
}

impl WriteBatch {
    pub fn point_count(&self) -> usize {
        self.series.iter().map(SeriesWrite::len).sum()
    }
}

/// Rejections listed with their reason per message or batch; later ones
/// are only counted. A response lists at most this many, so a message of
/// millions of invalid points costs a counter, not a string per point.
pub const MAX_LISTED_REJECTIONS: usize = 100;

/// A point rejected after validation, by its position in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub index: u64,
    pub reason: String,
}
