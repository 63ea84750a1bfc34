//! Warden: roles, permissions and role assignments for a fleet of services, and the `Check`
//! they call on their hot path.
//!
//! Layers: `grpc` (edge) -> `service` (use-cases) -> `store` (SeaORM) and `engine` (the
//! in-memory index), all speaking `domain` types.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod engine;
pub mod grpc;
pub mod health;
pub mod metric_names;
pub mod proto;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use config::Config;
