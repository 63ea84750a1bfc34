//! The OpenAPI 3 document of the HTTP/JSON routes, made from the same descriptors and rules the
//! gateway serves (so it cannot describe a route that does not exist), with the protos' comments
//! as descriptions. `openapi.json` at the repository root is this document, committed;
//! `tests/openapi.rs` fails when it is not current (`warden openapi > openapi.json` renews it).

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, MethodDescriptor,
};
use prost_types::FileDescriptorProto;
use serde_json::{Value as Json, json};

use super::routes::{self, BodyMapping, Route};

/// The document for every route of `pool`.
pub fn document(pool: &DescriptorPool, routes: &[Route]) -> Json {
    let mut paths: BTreeMap<String, serde_json::Map<String, Json>> = BTreeMap::new();
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut ordered: Vec<&Route> = routes.iter().collect();
    ordered.sort_by_key(|r| (r.rpc.full_name().to_owned(), r.binding));
    for route in ordered {
        let rpc = &route.rpc;
        let base = format!("{}_{}", rpc.parent_service().name(), rpc.name());
        let operation_id = match route.binding {
            0 => base,
            n => format!("{base}_{n}"),
        };
        let operation = operation(route, operation_id, &mut wanted);
        paths
            .entry(route.template.text.clone())
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    wanted.insert("google.rpc.Status".to_owned());
    let mut schemas = serde_json::Map::new();
    let mut queue: Vec<String> = wanted.into_iter().collect();
    let mut done = BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !done.insert(name.clone()) {
            continue;
        }
        let Some(message) = pool.get_message_by_name(&name) else {
            continue;
        };
        let mut refs = BTreeSet::new();
        schemas.insert(name, message_schema(&message, &mut refs));
        queue.extend(refs.into_iter().filter(|r| !done.contains(r)));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Warden",
            "version": "v1",
            "description": "Roles, permissions, role assignments and authorization checks. The same API \
                as Warden's gRPC services (warden.v1), transcoded by their google.api.http rules: \
                request and response bodies follow the proto3 JSON mapping (64-bit integers as \
                strings, enums by name). A path variable naming a role or permission takes its id \
                (a UUID) or its name. Errors are google.rpc.Status objects whose details carry a \
                google.rpc.ErrorInfo (domain `warden`) with the reason to match on.",
        },
        "security": [{ "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" }
            },
            "schemas": schemas,
        },
    })
}

fn operation(route: &Route, operation_id: String, wanted: &mut BTreeSet<String>) -> Json {
    let rpc = &route.rpc;
    let input = rpc.input();
    let output = rpc.output();
    let description = method_comment(rpc).unwrap_or_default();
    let summary = description
        .split(". ")
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    let mut parameters = Vec::new();
    let bound: Vec<&str> = route.template.variables().collect();
    for variable in &bound {
        let field = routes::field_path(&input, variable);
        let mut text = field.as_ref().and_then(field_comment).unwrap_or_default();
        if field
            .as_ref()
            .is_some_and(|f| matches!(f.kind(), Kind::Message(_)))
        {
            text = format!("The id (a UUID) or the name. {text}");
        }
        parameters.push(json!({
            "name": variable,
            "in": "path",
            "required": true,
            "description": text.trim(),
            "schema": { "type": "string" },
        }));
    }
    if route.body != BodyMapping::Whole {
        for field in input.fields() {
            if bound.contains(&field.name())
                || route.body == BodyMapping::Field(field.name().into())
            {
                continue;
            }
            let Some(schema) = query_schema(&field) else {
                continue;
            };
            parameters.push(json!({
                "name": field.name(),
                "in": "query",
                "required": false,
                "description": field_comment(&field).unwrap_or_default().trim(),
                "schema": schema,
            }));
        }
    }
    let mut op = json!({
        "operationId": operation_id,
        "tags": [rpc.parent_service().name()],
        "summary": summary,
        "description": description.trim(),
        "parameters": parameters,
        "responses": {},
    });
    let body_schema = match &route.body {
        BodyMapping::None => None,
        BodyMapping::Whole => Some(reference(&input, wanted)),
        BodyMapping::Field(field) => input
            .get_field_by_name(field)
            .map(|f| field_schema(&f, wanted)),
    };
    if let Some(schema) = body_schema {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema } },
        });
    }
    let mut responses = serde_json::Map::new();
    if rpc.is_server_streaming() {
        responses.insert(
            "200".into(),
            json!({
                "description": "One JSON object per line: {\"result\": <message>}, and \
                    {\"error\": <google.rpc.Status>} if the stream ends with an error.",
                "content": { "application/x-ndjson": { "schema": {
                    "type": "object",
                    "properties": {
                        "result": reference(&output, wanted),
                        "error": status_ref(),
                    },
                } } },
            }),
        );
    } else {
        responses.insert(
            "200".into(),
            json!({
                "description": "OK",
                "content": { "application/json": { "schema": reference(&output, wanted) } },
            }),
        );
        if output.get_field_by_name("change_request").is_some() {
            responses.insert(
                "202".into(),
                json!({
                    "description": "The change needs approval: the body holds the pending change \
                        request (`changeRequest`).",
                    "content": { "application/json": { "schema": reference(&output, wanted) } },
                }),
            );
        }
    }
    responses.insert(
        "default".into(),
        json!({
            "description": "An error: 400 invalid argument, 401 unauthenticated, 403 denied, \
                404 not found, 409 conflict or failed precondition, 412 etag mismatch, 429 over \
                a limit (Retry-After), 503 unavailable (Retry-After), 504 deadline.",
            "content": { "application/json": { "schema": status_ref() } },
        }),
    );
    op["responses"] = Json::Object(responses);
    op
}

fn status_ref() -> Json {
    json!({ "$ref": "#/components/schemas/google.rpc.Status" })
}

fn reference(message: &MessageDescriptor, wanted: &mut BTreeSet<String>) -> Json {
    if let Some(schema) = well_known(message) {
        return schema;
    }
    wanted.insert(message.full_name().to_owned());
    json!({ "$ref": format!("#/components/schemas/{}", message.full_name()) })
}

/// A query parameter's schema: scalars, enums, lists of them, timestamps and references.
fn query_schema(field: &FieldDescriptor) -> Option<Json> {
    let item = match field.kind() {
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            json!({ "type": "string", "format": "date-time" })
        }
        Kind::Message(m)
            if m.fields().len() == 2
                && m.get_field_by_name("id").is_some()
                && m.get_field_by_name("name").is_some() =>
        {
            json!({ "type": "string", "description": "The id (a UUID) or the name." })
        }
        Kind::Message(_) => return None,
        kind => scalar_schema(&kind),
    };
    Some(if field.is_list() {
        json!({ "type": "array", "items": item })
    } else {
        item
    })
}

fn message_schema(message: &MessageDescriptor, refs: &mut BTreeSet<String>) -> Json {
    let mut properties = serde_json::Map::new();
    for field in message.fields() {
        let mut schema = field_schema(&field, refs);
        if let (Some(text), Json::Object(map)) = (field_comment(&field), &mut schema)
            && !map.contains_key("$ref")
        {
            map.insert("description".into(), Json::String(text.trim().to_owned()));
        }
        properties.insert(field.json_name().to_owned(), schema);
    }
    let mut schema = json!({ "type": "object", "properties": properties });
    if let Some(text) = comment(message.parent_file_descriptor_proto(), message.path()) {
        schema["description"] = Json::String(text.trim().to_owned());
    }
    schema
}

fn field_schema(field: &FieldDescriptor, refs: &mut BTreeSet<String>) -> Json {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return json!({ "type": "object" });
        };
        let value = entry.map_entry_value_field();
        return json!({
            "type": "object",
            "additionalProperties": kind_schema(&value.kind(), refs),
        });
    }
    let item = kind_schema(&field.kind(), refs);
    if field.is_list() {
        json!({ "type": "array", "items": item })
    } else {
        item
    }
}

fn kind_schema(kind: &Kind, refs: &mut BTreeSet<String>) -> Json {
    match kind {
        Kind::Message(m) => reference(m, refs),
        other => scalar_schema(other),
    }
}

fn scalar_schema(kind: &Kind) -> Json {
    match kind {
        Kind::String => json!({ "type": "string" }),
        Kind::Bytes => json!({ "type": "string", "format": "byte" }),
        Kind::Bool => json!({ "type": "boolean" }),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({ "type": "integer", "format": "int32" })
        }
        Kind::Uint32 | Kind::Fixed32 => {
            json!({ "type": "integer", "format": "int64", "minimum": 0 })
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({ "type": "string", "format": "int64" })
        }
        Kind::Uint64 | Kind::Fixed64 => json!({ "type": "string", "format": "uint64" }),
        Kind::Float => json!({ "type": "number", "format": "float" }),
        Kind::Double => json!({ "type": "number", "format": "double" }),
        Kind::Enum(e) => enum_schema(e),
        Kind::Message(_) => json!({ "type": "object" }),
    }
}

fn enum_schema(e: &EnumDescriptor) -> Json {
    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
    let mut lines = Vec::new();
    for value in e.values() {
        if let Some(text) = comment(e.parent_file_descriptor_proto(), value.path()) {
            lines.push(format!(
                "- `{}`: {}",
                value.name(),
                text.trim().replace('\n', " ")
            ));
        }
    }
    let mut schema = json!({ "type": "string", "enum": names });
    if !lines.is_empty() {
        schema["description"] = Json::String(lines.join("\n"));
    }
    schema
}

/// The JSON mapping's own shapes for the well-known types.
fn well_known(message: &MessageDescriptor) -> Option<Json> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "description": "Seconds with an `s` suffix, e.g. `3600s`." })
        }
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "additionalProperties": true,
        }),
        _ => return None,
    })
}

fn method_comment(rpc: &MethodDescriptor) -> Option<String> {
    comment(rpc.parent_file().file_descriptor_proto(), rpc.path())
}

fn field_comment(field: &FieldDescriptor) -> Option<String> {
    comment(field.parent_file().file_descriptor_proto(), field.path())
}

/// The leading (else trailing) comment protoc recorded for the declaration at `path`.
fn comment(file: &FileDescriptorProto, path: &[i32]) -> Option<String> {
    let info = file.source_code_info.as_ref()?;
    let location = info.location.iter().find(|l| l.path == path)?;
    let text = location
        .leading_comments
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .or(location.trailing_comments.as_deref())?;
    let lines: Vec<&str> = text
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect();
    Some(lines.join("\n").trim().to_owned()).filter(|t| !t.is_empty())
}
