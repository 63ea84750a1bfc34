//! Generated protobuf and gRPC code; nothing else includes it directly.

#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations
)]
pub mod warden {
    pub mod v1 {
        tonic::include_proto!("warden.v1");
    }
}

pub use warden::v1 as pb;

/// Descriptor set of every `warden.v1` file and its imports, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("warden_descriptor");
