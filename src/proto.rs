//! Generated protobuf and gRPC code for package `tidemark.v1`, the
//! product's public contract. The engine never uses these types: the
//! adapters in `crate::grpc` convert at the edge.

#![allow(clippy::all, missing_docs)]

/// Messages and service stubs of `tidemark.v1`.
pub mod v1 {
    tonic::include_proto!("tidemark.v1");
}

/// The server side of `tidemark.v1.IngestService` again, with requests
/// as raw bytes that `crate::grpc::points` decodes (see `build.rs`). The
/// server uses this one; `v1::ingest_service_server` is left unused.
pub mod raw_ingest {
    include!(concat!(
        env!("OUT_DIR"),
        "/raw_ingest/tidemark.v1.IngestService.rs"
    ));
}

/// Encoded `FileDescriptorSet` of the API, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tidemark_descriptor.bin"));
