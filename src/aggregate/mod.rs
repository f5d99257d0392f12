//! Aggregation of points into per-bucket or per-window results: the
//! aggregation functions, time buckets and the fill of empty buckets.
//!
//! The query engine (the Aggregate and GetStatistics RPCs) maps each point
//! of a `crate::storage` scan to a bucket with [`bucket::Bucketer`], feeds
//! it to that bucket's [`Accumulator`], calls [`Accumulator::finish`] and
//! completes the bucket sequence with [`fill::fill`]. The live-window
//! aggregator keeps one `Accumulator` per open window, caps the values it
//! keeps for percentiles, and combines partial states with
//! [`Accumulator::merge`]. Everything here is pure computation: callers
//! bring the points and own the state.

pub mod bucket;

pub use bucket::{Bucketer, Granularity};
