//! Compiles the protobuf API under `proto/` with protox, a pure-Rust
//! compiler, so a build needs no system `protoc`.
//!
//! The server side of `IngestService` is generated a second time by hand
//! (`tonic_build::manual`) with a codec that hands the handler the raw
//! request bytes: `grpc::points` decodes them without building a
//! `Point` struct per point. Clients keep the prost-generated types, and
//! the wire format is the one in `proto/tidemark/v1/ingest.proto`.

use std::path::PathBuf;

const PROTO_FILES: &[&str] = &[
    "tidemark/v1/common.proto",
    "tidemark/v1/ingest.proto",
    "tidemark/v1/query.proto",
    "tidemark/v1/live.proto",
    "tidemark/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");

    let file_descriptors = protox::compile(PROTO_FILES, ["proto"])?;

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("tidemark_descriptor.bin");
    std::fs::write(
        &descriptor_path,
        prost::Message::encode_to_vec(&file_descriptors),
    )?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(file_descriptors)?;

    compile_raw_ingest_server(&out_dir.join("raw_ingest"))?;
    Ok(())
}

fn compile_raw_ingest_server(out_dir: &std::path::Path) -> std::io::Result<()> {
    use tonic_build::manual::{Builder, Method, Service};

    let method = |name: &str, route: &str, output: &str, client_streaming: bool| {
        let builder = Method::builder()
            .name(name)
            .route_name(route)
            .input_type("bytes::Bytes")
            .output_type(output)
            .codec_path("crate::grpc::points::RawRequestCodec");
        let builder = if client_streaming {
            builder.client_streaming()
        } else {
            builder
        };
        builder.build()
    };
    let service = Service::builder()
        .name("IngestService")
        .package("tidemark.v1")
        .method(method(
            "stream_points",
            "StreamPoints",
            "crate::proto::v1::StreamPointsResponse",
            true,
        ))
        .method(method(
            "write_points",
            "WritePoints",
            "crate::proto::v1::WritePointsResponse",
            false,
        ))
        .build();

    std::fs::create_dir_all(out_dir)?;
    Builder::new()
        .build_client(false)
        .out_dir(out_dir)
        .compile(&[service]);
    Ok(())
}
