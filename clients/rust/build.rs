//! Client stubs for `proto/warden/v1` (the same files the server compiles), with a vendored protoc.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("../..");
    println!("cargo:rerun-if-changed=../../proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; tonic-prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("proto/warden/v1"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.retain(|p| p.extension().is_some_and(|e| e == "proto"));
    files.sort();
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(
            &files,
            &[
                root.join("proto"),
                root.join("third_party/googleapis"),
                protoc_bin_vendored::include_path()?,
            ],
        )?;
    Ok(())
}
