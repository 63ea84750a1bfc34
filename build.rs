//! Compiles `proto/warden/v1/*.proto` with a vendored `protoc`, so a fresh machine needs none.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; tonic-prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let files: Vec<PathBuf> = std::fs::read_dir("proto/warden/v1")?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    let mut files: Vec<PathBuf> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "proto"))
        .collect();
    files.sort();
    // Described for reflection only (grpcurl decodes error details with it).
    files.push(PathBuf::from("proto/google/rpc/error_details.proto"));

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("warden_descriptor.bin"))
        .compile_protos(
            &files,
            &[PathBuf::from("proto"), protoc_bin_vendored::include_path()?],
        )?;
    Ok(())
}
