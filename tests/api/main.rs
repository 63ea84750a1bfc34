//! One integration-test binary: every test starts a real server on an ephemeral port against a
//! real database (SQLite and PostgreSQL) and talks to it with real tonic clients.

mod helpers;

mod approval_gate;
mod approval_policies;
mod assignments;
mod auth;
mod batches;
mod boundaries;
mod catalogue;
mod check_route;
mod cli;
mod composite_roles;
mod configuration;
mod consistency;
mod differential;
mod durability;
mod expiry;
mod fairness;
mod grpc_web;
mod hardening;
mod http_json;
mod idempotency;
mod layering;
mod oidc;
mod ops;
mod outage;
mod protected_roles;
mod revisions;
mod scopes;
mod startup;
mod tenants;
mod tls;
mod writes;
