//! Thin gRPC adapters: one file per service. Each handler validates the
//! request, converts it to engine types and delegates; errors become
//! `tonic::Status` only in [`status`].

pub mod admin;
pub mod convert;
pub mod ingest;
pub mod live;
pub mod live_server;
pub mod points;
pub mod query;
pub mod status;
pub mod wire;
