//! Compiles the protobuf API under `proto/` with protox, a pure-Rust
//! compiler, so a build needs no system `protoc`.

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
    Ok(())
}
