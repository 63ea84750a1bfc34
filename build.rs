//! Compiles `proto/warden/v1/*.proto` with a vendored `protoc`, so a fresh machine needs none.
//! The googleapis files they import (HTTP annotations) and the error details described for
//! reflection and HTTP error bodies come from `third_party/googleapis`, outside `proto/`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=third_party");
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
    // Described only (no Rust is used from them): grpcurl decodes error details through
    // reflection, and the HTTP/JSON edge renders `google.rpc.Status` bodies with them.
    files.push(PathBuf::from(
        "third_party/googleapis/google/rpc/error_details.proto",
    ));
    files.push(PathBuf::from(
        "third_party/googleapis/google/rpc/status.proto",
    ));

    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("warden_descriptor.bin"))
        .compile_protos(
            &files,
            &[
                PathBuf::from("proto"),
                PathBuf::from("third_party/googleapis"),
                protoc_bin_vendored::include_path()?,
            ],
        )?;
    Ok(())
}
