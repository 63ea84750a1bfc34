//! The methods this server routes, read once from the descriptor sets: what the edge needs to
//! know of each (its labels, whether it streams, which rules it is exempt from) and its
//! registered metric handles, so a call does one map lookup instead of building label sets.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hashbrown::HashMap;
use metrics::{Counter, Histogram};
use prost::Message as _;
use tonic::Code;

use crate::grpc::code_name;
use crate::metric_names::{RPC_HANDLING_SECONDS, RPCS_HANDLED, RPCS_STARTED};

/// The one method Check's fast path answers.
pub(super) const CHECK_PATH: &str = "/warden.v1.AuthorizationService/Check";
const BATCH_CHECK_PATH: &str = "/warden.v1.AuthorizationService/BatchCheck";
/// Reachable without a token: probes and grpcurl discovery, nothing else.
const OPEN_PREFIXES: [&str; 3] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];
/// Neither shed nor timed out: an overloaded replica still answers its probes, and health
/// Watch streams for as long as the client wants.
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// Warden's own services; of their methods, these change nothing.
const WARDEN_PREFIX: &str = "/warden.v1.";
const READ_PREFIXES: [&str; 6] = ["Get", "List", "Watch", "Check", "BatchCheck", "Export"];
/// Reflection's descriptors are not in the sets; its one method is well known.
const REFLECTION_PATHS: [&str; 2] = [
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// gRPC's four call shapes, as the `grpc_type` label names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Unary,
    ClientStream,
    ServerStream,
    BidiStream,
}

impl Kind {
    fn of(client_streaming: bool, server_streaming: bool) -> Self {
        match (client_streaming, server_streaming) {
            (false, false) => Self::Unary,
            (true, false) => Self::ClientStream,
            (false, true) => Self::ServerStream,
            (true, true) => Self::BidiStream,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Unary => "unary",
            Self::ClientStream => "client_stream",
            Self::ServerStream => "server_stream",
            Self::BidiStream => "bidi_stream",
        }
    }

    /// A response that only ends when the server ends it: cut when draining starts.
    pub(super) fn streams_responses(self) -> bool {
        matches!(self, Self::ServerStream | Self::BidiStream)
    }
}

/// One routed method (or the stand-in for every unknown path).
pub(super) struct Method {
    /// `/pkg.Service/Method`, as the caller and the audit trail name the RPC.
    pub(super) path: Box<str>,
    pub(super) kind: Kind,
    /// No bearer token needed.
    pub(super) open: bool,
    /// Neither shed nor timed out.
    pub(super) unlimited: bool,
    /// Check: answered by the edge's fast path.
    pub(super) check: bool,
    /// Changes something (counts against a tenant's writes per second).
    pub(super) mutating: bool,
    /// Writes no log line on success (the decision RPCs): a span is made for it only when an
    /// exporter will record it.
    pub(super) quiet: bool,
    started: Counter,
    seconds: Histogram,
    /// Per gRPC code (0-16), registered on first use.
    handled: [OnceLock<Counter>; 17],
    service: &'static str,
    method: &'static str,
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method").field("path", &self.path).finish()
    }
}

impl Method {
    fn new(path: &str, service: &str, method: &str, kind: Kind) -> Self {
        // Leaked once per method at start-up: the label values live as long as the recorder.
        let service: &'static str = Box::leak(service.into());
        let method: &'static str = Box::leak(method.into());
        let labels = [
            ("grpc_service", service),
            ("grpc_method", method),
            ("grpc_type", kind.label()),
        ];
        Self {
            path: path.into(),
            kind,
            open: OPEN_PREFIXES.iter().any(|p| path.starts_with(p)),
            unlimited: path.starts_with(HEALTH_PREFIX),
            check: path == CHECK_PATH,
            mutating: path.starts_with(WARDEN_PREFIX)
                && !READ_PREFIXES.iter().any(|read| method.starts_with(read)),
            quiet: path == CHECK_PATH || path == BATCH_CHECK_PATH,
            started: metrics::counter!(RPCS_STARTED, &labels),
            seconds: metrics::histogram!(RPC_HANDLING_SECONDS, &labels),
            handled: std::array::from_fn(|_| OnceLock::new()),
            service,
            method,
        }
    }

    pub(super) fn started(&self) {
        self.started.increment(1);
    }

    pub(super) fn handled(&self, code: Code, took: Duration) {
        self.seconds.record(took.as_secs_f64());
        self.handled[(code as usize).min(16)]
            .get_or_init(|| {
                metrics::counter!(
                    RPCS_HANDLED,
                    "grpc_service" => self.service,
                    "grpc_method" => self.method,
                    "grpc_type" => self.kind.label(),
                    "grpc_code" => code_name(code),
                )
            })
            .increment(1);
    }

    /// `pkg.Service` and `Method`, for the span.
    pub(super) fn names(&self) -> (&'static str, &'static str) {
        (self.service, self.method)
    }
}

/// Every method this server routes, by path. Unknown paths share one `unknown` entry, so a
/// client cannot grow the metrics without bound.
#[derive(Debug)]
pub(super) struct Methods {
    by_path: HashMap<Box<str>, Arc<Method>>,
    unknown: Arc<Method>,
}

impl Methods {
    /// Reads the methods of `sets` (encoded `FileDescriptorSet`s) and registers their metrics;
    /// the metrics recorder must be installed first.
    pub(super) fn from_descriptors(sets: &[&[u8]]) -> Self {
        let mut by_path = HashMap::new();
        let mut add = |method: Method| {
            by_path.insert(method.path.clone(), Arc::new(method));
        };
        for bytes in sets {
            let Ok(set) = prost_types::FileDescriptorSet::decode(*bytes) else {
                continue;
            };
            for file in set.file {
                let package = file.package();
                for service in &file.service {
                    let service_name = format!("{package}.{}", service.name());
                    for method in &service.method {
                        let path = format!("/{service_name}/{}", method.name());
                        let kind = Kind::of(method.client_streaming(), method.server_streaming());
                        add(Method::new(&path, &service_name, method.name(), kind));
                    }
                }
            }
        }
        for path in REFLECTION_PATHS {
            let (service, method) = split(path);
            add(Method::new(path, service, method, Kind::BidiStream));
        }
        Self {
            by_path,
            unknown: Arc::new(Method::new("/unknown", "unknown", "unknown", Kind::Unary)),
        }
    }

    /// The method `path` routes to, or the `unknown` entry.
    pub(super) fn get(&self, path: &str) -> &Arc<Method> {
        self.by_path.get(path).unwrap_or(&self.unknown)
    }
}

fn split(path: &str) -> (&str, &str) {
    path.trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("unknown", "unknown"))
}
