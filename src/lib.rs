//! tidemark: a metrics server for workflow ("recipe") runners and their
//! dashboards. Runners stream points in over gRPC; dashboards run unary
//! queries and time-bucketed aggregations, and subscribe to live
//! aggregation windows that the server pushes as they close.
//!
//! Modules, in the order a point meets them:
//!
//! - [`proto`]: generated code of the `tidemark.v1` protobuf API.
//! - [`grpc`]: thin service adapters that validate requests, convert them
//!   to engine types and map errors to `tonic::Status`.
//! - [`model`]: series, tag sets, values, write batches, filters, limits.
//! - [`ingest`]: the bounded channel and ingest threads that apply batches
//!   to storage and feed the live hub.
//! - [`storage`]: the storage trait and its engines.
//! - [`aggregate`]: aggregation functions, buckets and fill.
//! - [`query`]: raw queries, aggregations and statistics over storage.
//! - [`live`]: incremental window aggregation and subscriber queues.
//! - [`retention`]: the retention pass.
//! - [`server`]: wiring, start-up and graceful shutdown.
//! - [`cli`]: the `tidemark` command line (server and client commands).

pub mod aggregate;
pub mod cli;
pub mod clock;
pub mod grpc;
pub mod ingest;
pub mod live;
pub mod model;
pub mod proto;
pub mod query;
pub mod retention;
pub mod server;
pub mod storage;
