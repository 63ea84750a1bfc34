//! HTTP/JSON beside gRPC, on the same port: a request whose content type is not gRPC is
//! transcoded by the contract's `google.api.http` rules into the gRPC call it describes, and that
//! call goes through the edge and the same handlers as any other (auth, limits, metrics,
//! request ids, audit), in this process. Nothing here decides anything about the API; it only
//! translates.
//!
//! - The request message is built from the JSON body (proto3 JSON mapping, unknown fields
//!   refused), the path variables and the query string (`page_size=10&role.name=editor`).
//! - A path variable or query parameter naming a reference (`{role}`, `{permission}`: a message
//!   with `id` and `name`) takes either: a canonical UUID is the id, anything else the name. So
//!   `/v1/roles/{role_id}/permissions/{permission_id}` and
//!   `/v1/roles/{role_name}/permissions/{permission_name}` are one route.
//! - The answer is the response message as JSON (every field present, 64-bit integers as
//!   strings, enums by name), with 200, or 202 when it holds a pending change request (a write
//!   that needs approval). An error is the `google.rpc.Status` as JSON, its HTTP status from
//!   the gRPC code and ErrorInfo reason (`http_status`), and `Retry-After` from its RetryInfo.
//! - WatchChanges streams one JSON object per line (`{"result": …}`, then `{"error": …}` if the
//!   stream ends with one).
//! - `GET /openapi.json` is the OpenAPI 3 document of these routes (`openapi.rs`).

mod openapi;
mod routes;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use futures::future::{BoxFuture, Either};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, SerializeOptions};
use serde_json::{Map, Value as JsonValue};
use tonic::body::Body;
use tonic::{Code, Status};
use tower::{Layer, Service};

use routes::{BodyMapping, Route};

/// The OpenAPI document the server serves at `/openapi.json` (pretty-printed JSON).
pub fn openapi_json() -> Result<String, anyhow::Error> {
    let gateway = Gateway::new(crate::proto::FILE_DESCRIPTOR_SET, 0)?;
    Ok(String::from_utf8(gateway.openapi.to_vec())? + "\n")
}

/// `encoded`, a message of the contract type `full_name` (`warden.v1.IndexChange`), as the
/// JSON the HTTP side answers with (for the CLI's `-o json`).
pub fn proto_json(full_name: &str, encoded: &[u8]) -> Option<JsonValue> {
    static POOL: std::sync::OnceLock<Option<DescriptorPool>> = std::sync::OnceLock::new();
    let pool = POOL
        .get_or_init(|| DescriptorPool::decode(crate::proto::FILE_DESCRIPTOR_SET).ok())
        .as_ref()?;
    let message = DynamicMessage::decode(pool.get_message_by_name(full_name)?, encoded).ok()?;
    Some(to_json_value(&message))
}

/// What the HTTP/JSON side needs, built once at start.
pub(crate) struct Gateway {
    routes: Vec<Route>,
    status: MessageDescriptor,
    openapi: Bytes,
    max_body_bytes: usize,
}

impl Gateway {
    /// Routes from every `google.api.http` rule in `descriptor_set`; JSON bodies up to
    /// `max_body_bytes`.
    pub(crate) fn new(descriptor_set: &[u8], max_body_bytes: usize) -> Result<Self, anyhow::Error> {
        let pool = DescriptorPool::decode(descriptor_set)?;
        let routes = routes::routes(&pool).map_err(anyhow::Error::msg)?;
        let status = pool
            .get_message_by_name("google.rpc.Status")
            .ok_or_else(|| anyhow::anyhow!("google.rpc.Status is not described"))?;
        let openapi = serde_json::to_vec_pretty(&openapi::document(&pool, &routes))?.into();
        Ok(Self {
            routes,
            status,
            openapi,
            max_body_bytes,
        })
    }
}

/// Puts the HTTP/JSON side in front of `S` (the edge).
#[derive(Clone)]
pub struct JsonLayer {
    gateway: Arc<Gateway>,
}

impl JsonLayer {
    pub(crate) fn new(gateway: Gateway) -> Self {
        Self {
            gateway: Arc::new(gateway),
        }
    }
}

impl<S> Layer<S> for JsonLayer {
    type Service = Json<S>;

    fn layer(&self, inner: S) -> Json<S> {
        Json {
            inner,
            gateway: self.gateway.clone(),
        }
    }
}

/// See the module documentation.
#[derive(Clone)]
pub struct Json<S> {
    inner: S,
    gateway: Arc<Gateway>,
}

impl<S> std::fmt::Debug for Json<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Json").finish_non_exhaustive()
    }
}

impl<S> Service<http::Request<Body>> for Json<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<http::Response<Body>, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // gRPC (and gRPC-Web, already turned into gRPC outside) passes untouched: one header
        // comparison on the hot path.
        let grpc = request
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if grpc {
            return Either::Left(self.inner.call(request));
        }
        // The clone is ready only after its own poll_ready; the polled one serves this call.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let gateway = self.gateway.clone();
        Either::Right(Box::pin(
            async move { Ok(gateway.handle(request, inner).await) },
        ))
    }
}

impl Gateway {
    async fn handle<S>(&self, request: http::Request<Body>, inner: S) -> http::Response<Body>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    {
        let path = request.uri().path().to_owned();
        if path == "/openapi.json" && request.method() == Method::GET {
            return respond(StatusCode::OK, "application/json", self.openapi.clone());
        }
        let mut allowed = Vec::new();
        let mut found = None;
        for route in &self.routes {
            if let Some(bound) = route.template.matches(&path) {
                if route.method == *request.method() {
                    found = Some((route, bound));
                    break;
                }
                allowed.push(route.method.clone());
            }
        }
        let Some((route, bound)) = found else {
            if allowed.is_empty() {
                return self.error(Code::NotFound, &format!("no route for {path}"));
            }
            let mut response = self.error_with(
                StatusCode::METHOD_NOT_ALLOWED,
                Code::Unimplemented,
                &format!("{path} does not accept {}", request.method()),
            );
            let list = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if let Ok(value) = HeaderValue::from_str(&list) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        };
        match self.call(route, bound, request, inner).await {
            Ok(response) => response,
            Err((status, headers)) => {
                let mut response = self.status_response(&status);
                response.headers_mut().extend(headers);
                response
            }
        }
    }

    async fn call<S>(
        &self,
        route: &Route,
        bound: Vec<(String, String)>,
        request: http::Request<Body>,
        mut inner: S,
    ) -> Result<http::Response<Body>, (Status, HeaderMap)>
    where
        S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    {
        let alone = |status: Status| (status, HeaderMap::new());
        let (parts, body) = request.into_parts();
        let input = route.rpc.input();
        let body = match route.body {
            BodyMapping::None => Bytes::new(),
            _ => read_body(body, self.max_body_bytes).await.map_err(alone)?,
        };
        let message =
            build_request(&input, route, &body, &bound, parts.uri.query()).map_err(alone)?;
        let mut frame = BytesMut::with_capacity(5 + message.encoded_len());
        frame.put_u8(0);
        frame.put_u32(u32::try_from(message.encoded_len()).unwrap_or(u32::MAX));
        message
            .encode(&mut frame)
            .map_err(|_| alone(Status::internal("internal error")))?;

        let mut grpc = http::Request::builder()
            .method(Method::POST)
            .uri(route.grpc_path.as_str())
            .version(http::Version::HTTP_2)
            .body(Body::new(http_body_util::Full::new(frame.freeze())))
            .map_err(|_| alone(Status::internal("internal error")))?;
        *grpc.extensions_mut() = parts.extensions;
        let headers = grpc.headers_mut();
        for (name, value) in &parts.headers {
            if forwarded(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(header::TE, HeaderValue::from_static("trailers"));

        let Ok(response) = inner.call(grpc).await;
        let (parts, body) = response.into_parts();
        let mut headers = HeaderMap::new();
        for (name, value) in &parts.headers {
            if passed_back(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        if parts.headers.contains_key("grpc-status") {
            // Trailers-only: the call failed before any message.
            return Err((status_of(&parts.headers), headers));
        }
        let output = route.rpc.output();
        if route.rpc.is_server_streaming() {
            let mut response = http::Response::new(self.stream(output, body));
            *response.headers_mut() = headers;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            );
            return Ok(response);
        }
        let collected = match body.collect().await {
            Ok(collected) => collected,
            Err(e) => {
                let status = Status::unavailable(format!("the call ended early: {e}"));
                return Err((status, headers));
            }
        };
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let mut data = collected.to_bytes();
        let status = status_of(&trailers);
        if status.code() != Code::Ok {
            return Err((status, headers));
        }
        let Some(message) =
            next_frame(&mut data).and_then(|payload| DynamicMessage::decode(output, payload).ok())
        else {
            return Err((Status::internal("internal error"), headers));
        };
        // A write that needs approval answers with its change request: 202, as Dfns does.
        let code = if message.has_field_by_name("change_request") {
            StatusCode::ACCEPTED
        } else {
            StatusCode::OK
        };
        let mut response = respond(code, "application/json", to_json(&message));
        response.headers_mut().extend(headers);
        Ok(response)
    }

    /// A server stream as newline-delimited JSON.
    fn stream(&self, output: MessageDescriptor, body: Body) -> Body {
        let status_desc = self.status.clone();
        let lines = futures::stream::unfold(Some((body, BytesMut::new())), move |state| {
            let output = output.clone();
            let status_desc = status_desc.clone();
            async move {
                let (mut body, mut buffer) = state?;
                loop {
                    let mut data = buffer.clone().freeze();
                    if let Some(payload) = next_frame(&mut data) {
                        buffer = BytesMut::from(&data[..]);
                        let line = match DynamicMessage::decode(output.clone(), payload) {
                            Ok(m) => line("result", to_json_value(&m)),
                            Err(_) => line(
                                "error",
                                status_json(&status_desc, &Status::internal("internal error")),
                            ),
                        };
                        return Some((
                            Ok::<_, Infallible>(http_body::Frame::data(line)),
                            Some((body, buffer)),
                        ));
                    }
                    match body.frame().await {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) => buffer.extend_from_slice(&data),
                            Err(frame) => {
                                let trailers = frame.into_trailers().unwrap_or_default();
                                let status = status_of(&trailers);
                                if status.code() == Code::Ok {
                                    return None;
                                }
                                let line = line("error", status_json(&status_desc, &status));
                                return Some((Ok(http_body::Frame::data(line)), None));
                            }
                        },
                        Some(Err(e)) => {
                            let status =
                                Status::unavailable(format!("the stream ended early: {e}"));
                            let line = line("error", status_json(&status_desc, &status));
                            return Some((Ok(http_body::Frame::data(line)), None));
                        }
                        None => return None,
                    }
                }
            }
        });
        Body::new(http_body_util::StreamBody::new(lines))
    }

    fn error(&self, code: Code, message: &str) -> http::Response<Body> {
        self.status_response(&Status::new(code, message))
    }

    fn error_with(&self, http: StatusCode, code: Code, message: &str) -> http::Response<Body> {
        let body = serde_json::to_vec(&status_json(&self.status, &Status::new(code, message)))
            .unwrap_or_default();
        respond(http, "application/json", body.into())
    }

    /// A failed call as `google.rpc.Status` JSON, with the HTTP status its code and reason
    /// mean.
    fn status_response(&self, status: &Status) -> http::Response<Body> {
        use tonic_types::StatusExt as _;
        let details = status.get_error_details();
        let reason = details.error_info().map(|i| i.reason.as_str());
        let body = serde_json::to_vec(&status_json(&self.status, status)).unwrap_or_default();
        let mut response = respond(
            http_status(status.code(), reason),
            "application/json",
            body.into(),
        );
        if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
            let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// The HTTP status a gRPC code (and, where it says more, the ErrorInfo reason) means: the
/// mapping of google.rpc.Code, except that a stale `etag` (ETAG_MISMATCH) is 412 and
/// FAILED_PRECONDITION, a conflict with the resource's state here, is 409 like ABORTED.
pub(crate) fn http_status(code: Code, reason: Option<&str>) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        _ if reason == Some("ETAG_MISMATCH") => StatusCode::PRECONDITION_FAILED,
        Code::AlreadyExists | Code::Aborted | Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The status a response carries, or UNKNOWN when it carries none.
fn status_of(headers: &HeaderMap) -> Status {
    Status::from_header_map(headers)
        .unwrap_or_else(|| Status::unknown("the call ended without a status"))
}

/// Request headers the gRPC call carries on: everything the caller sent (authorization,
/// idempotency-key, traceparent, x-request-id …) except the HTTP framing and gRPC's own.
fn forwarded(name: &header::HeaderName) -> bool {
    let name = name.as_str();
    !(matches!(
        name,
        "host"
            | "connection"
            | "keep-alive"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-connection"
            | "te"
            | "content-length"
            | "content-type"
            | "content-encoding"
            | "accept"
            | "accept-encoding"
    ) || (name.starts_with("grpc-") && name != "grpc-timeout"))
}

/// Response headers the HTTP answer keeps (x-request-id and other metadata).
fn passed_back(name: &header::HeaderName) -> bool {
    let name = name.as_str();
    !(name == "content-type" || name.starts_with("grpc-"))
}

async fn read_body(body: Body, limit: usize) -> Result<Bytes, Status> {
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Status::resource_exhausted(
            format!("the request body is over {limit} bytes"),
        )),
        Err(_) => Err(Status::invalid_argument(
            "the request body could not be read",
        )),
    }
}

/// The next length-prefixed gRPC message in `data`, advancing past it.
fn next_frame(data: &mut Bytes) -> Option<Bytes> {
    if data.len() < 5 || data[0] != 0 {
        return None;
    }
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    if data.len() < 5 + len {
        return None;
    }
    data.advance(5);
    Some(data.split_to(len))
}

/// The request message: body, then path variables, then query parameters.
fn build_request(
    input: &MessageDescriptor,
    route: &Route,
    body: &[u8],
    bound: &[(String, String)],
    query: Option<&str>,
) -> Result<DynamicMessage, Status> {
    let invalid = |message: String| Status::invalid_argument(message);
    let mut object = Map::new();
    let body_json = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(
            serde_json::from_slice::<JsonValue>(body)
                .map_err(|e| invalid(format!("the request body is not JSON: {e}")))?,
        )
    };
    match (&route.body, body_json) {
        (BodyMapping::Whole, Some(JsonValue::Object(map))) => object = map,
        (BodyMapping::Whole, Some(_)) => {
            return Err(invalid("the request body must be a JSON object".into()));
        }
        (BodyMapping::Field(field), Some(value)) => {
            object.insert(field.clone(), value);
        }
        _ => {}
    }
    let mut from_url: Vec<(String, String)> = bound.to_vec();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = routes::percent_decode(key)
            .ok_or_else(|| invalid(format!("query parameter {key:?} is not valid UTF-8")))?;
        let value = routes::percent_decode(&value.replace('+', " "))
            .ok_or_else(|| invalid(format!("query parameter {key} is not valid UTF-8")))?;
        if bound.iter().any(|(b, _)| *b == key) {
            return Err(invalid(format!("{key} is given by the path")));
        }
        from_url.push((key, value));
    }
    for (path, value) in &from_url {
        set_path(&mut object, input, path, value).map_err(invalid)?;
    }
    DynamicMessage::deserialize(input.clone(), JsonValue::Object(object))
        .map_err(|e| invalid(format!("the request does not match {}: {e}", input.name())))
}

/// Sets `path` (dotted, proto field names) in `object` to `raw`, typed by the field it names.
fn set_path(
    object: &mut Map<String, JsonValue>,
    message: &MessageDescriptor,
    path: &str,
    raw: &str,
) -> Result<(), String> {
    let (head, rest) = match path.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (path, None),
    };
    let field = message
        .get_field_by_name(head)
        .or_else(|| message.fields().find(|f| f.json_name() == head))
        .ok_or_else(|| format!("{} has no field {head}", message.name()))?;
    // One spelling per field: the URL's value replaces whatever the body said.
    let key = field.name().to_owned();
    if field.json_name() != key {
        object.remove(field.json_name());
    }
    match (field.kind(), rest) {
        (Kind::Message(inner), Some(rest)) => {
            let entry = object
                .entry(key)
                .or_insert_with(|| JsonValue::Object(Map::new()));
            let JsonValue::Object(child) = entry else {
                return Err(format!("{head} is not an object"));
            };
            set_path(child, &inner, rest, raw)
        }
        (Kind::Message(inner), None) if is_reference(&inner) => {
            // `{role}`: an id when it is a canonical UUID, else a name.
            let which =
                if uuid::Uuid::try_parse(raw).is_ok_and(|u| u.hyphenated().to_string() == raw) {
                    "id"
                } else {
                    "name"
                };
            let mut reference = Map::new();
            reference.insert(which.to_owned(), JsonValue::String(raw.to_owned()));
            object.insert(key, JsonValue::Object(reference));
            Ok(())
        }
        (_, Some(_)) => Err(format!("{head} has no fields")),
        (kind, None) => {
            let value = scalar(&kind, raw)
                .ok_or_else(|| format!("{path}: {raw:?} is not a valid value"))?;
            if field.is_list() {
                let entry = object
                    .entry(key)
                    .or_insert_with(|| JsonValue::Array(Vec::new()));
                match entry {
                    JsonValue::Array(items) => items.push(value),
                    other => *other = JsonValue::Array(vec![value]),
                }
            } else {
                object.insert(key, value);
            }
            Ok(())
        }
    }
}

/// A message of the `RoleRef` shape: `id` and `name`, both strings.
fn is_reference(message: &MessageDescriptor) -> bool {
    let string = |name: &str| {
        message
            .get_field_by_name(name)
            .is_some_and(|f| f.kind() == Kind::String)
    };
    message.fields().len() == 2 && string("id") && string("name")
}

/// A URL's text as the JSON value proto3's JSON mapping accepts for the field's kind.
fn scalar(kind: &Kind, raw: &str) -> Option<JsonValue> {
    Some(match kind {
        Kind::Bool => match raw {
            "true" | "1" | "" => JsonValue::Bool(true),
            "false" | "0" => JsonValue::Bool(false),
            _ => return None,
        },
        // Numbers, enums (by name or number), 64-bit integers and well-known types such as
        // Timestamp are all accepted as strings by the JSON mapping.
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            JsonValue::String(raw.to_owned())
        }
        Kind::Message(_) => return None,
        Kind::Enum(e) => match raw.parse::<i32>() {
            Ok(n) => JsonValue::from(n),
            Err(_) => {
                e.get_value_by_name(raw)?;
                JsonValue::String(raw.to_owned())
            }
        },
        Kind::Double | Kind::Float => JsonValue::from(raw.parse::<f64>().ok()?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => JsonValue::from(raw.parse::<i32>().ok()?),
        Kind::Uint32 | Kind::Fixed32 => JsonValue::from(raw.parse::<u32>().ok()?),
        _ => JsonValue::String(raw.to_owned()),
    })
}

fn json_options() -> SerializeOptions {
    SerializeOptions::new().skip_default_fields(false)
}

fn to_json_value(message: &DynamicMessage) -> JsonValue {
    message
        .serialize_with_options(serde_json::value::Serializer, &json_options())
        .unwrap_or(JsonValue::Null)
}

fn to_json(message: &DynamicMessage) -> Bytes {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    if message
        .serialize_with_options(&mut serializer, &json_options())
        .is_err()
    {
        return Bytes::from_static(b"{}");
    }
    out.into()
}

fn line(key: &str, value: JsonValue) -> Bytes {
    let mut object = Map::new();
    object.insert(key.to_owned(), value);
    let mut out = serde_json::to_vec(&JsonValue::Object(object)).unwrap_or_default();
    out.push(b'\n');
    out.into()
}

/// `status` as `google.rpc.Status` JSON, its details (ErrorInfo, BadRequest, RetryInfo …)
/// typed through the descriptor set.
fn status_json(desc: &MessageDescriptor, status: &Status) -> JsonValue {
    if !status.details().is_empty()
        && let Ok(message) = DynamicMessage::decode(desc.clone(), status.details())
    {
        let value = message
            .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
            .unwrap_or(JsonValue::Null);
        if value.is_object() {
            return value;
        }
    }
    serde_json::json!({ "code": status.code() as i32, "message": status.message(), "details": [] })
}

fn respond(code: StatusCode, content_type: &'static str, body: Bytes) -> http::Response<Body> {
    let mut response = http::Response::new(Body::new(http_body_util::Full::new(body)));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
