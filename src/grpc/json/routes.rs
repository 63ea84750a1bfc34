//! The HTTP routes the contract declares: every RPC's `google.api.http` rule (and its
//! additional bindings), read from the embedded descriptor set at start.

use std::borrow::Cow;

use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, Value};

/// One HTTP binding of one RPC.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub method: http::Method,
    pub template: Template,
    /// What the request body maps to: nothing, the whole request message (`*`) or one field.
    pub body: BodyMapping,
    /// `/warden.v1.RoleService/GetRole`.
    pub grpc_path: String,
    pub rpc: MethodDescriptor,
    /// 0 for the rule itself, then its additional bindings in order.
    pub binding: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyMapping {
    None,
    Whole,
    Field(String),
}

/// A path template: `/v1/roles/{role}/permissions/{permission}`, or with a custom verb,
/// `/v1/changeRequests/{change_request_id}:approve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub segments: Vec<Segment>,
    pub verb: Option<String>,
    /// As written in the annotation (the OpenAPI path).
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    /// A request field (a dotted path such as `role` or `permission.name`) bound to one segment.
    Variable(String),
}

impl Template {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| format!("template {text:?} does not start with /"))?;
        // A custom verb follows the last segment, outside any variable.
        let (path, verb) = match rest.rfind(':') {
            Some(at) if !rest[at..].contains('}') && !rest[at..].contains('/') => {
                (&rest[..at], Some(rest[at + 1..].to_owned()))
            }
            _ => (rest, None),
        };
        let segments = path
            .split('/')
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(var) if !var.is_empty() && !var.contains('=') => {
                        Ok(Segment::Variable(var.to_owned()))
                    }
                    Some(_) => Err(format!("template {text:?}: unsupported variable {s:?}")),
                    None if s.is_empty() || s.contains(['{', '}']) => {
                        Err(format!("template {text:?}: bad segment {s:?}"))
                    }
                    None => Ok(Segment::Literal(s.to_owned())),
                },
            )
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            segments,
            verb,
            text: text.to_owned(),
        })
    }

    /// The variables' values when `path` (still percent-encoded) matches, decoded.
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let parts: Vec<&str> = rest.split('/').collect();
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut bound = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Variable(field) => {
                    let value = percent_decode(part)?;
                    if value.is_empty() {
                        return None;
                    }
                    bound.push((field.clone(), value));
                }
            }
        }
        Some(bound)
    }

    /// How many literal segments it has: the more specific template wins a tie.
    pub(crate) fn literals(&self) -> usize {
        self.segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count()
            + usize::from(self.verb.is_some())
    }

    pub(crate) fn variables(&self) -> impl Iterator<Item = &str> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Variable(v) => Some(v.as_str()),
            Segment::Literal(_) => None,
        })
    }
}

/// `%2F` and friends decoded; None for malformed escapes or invalid UTF-8.
pub(crate) fn percent_decode(raw: &str) -> Option<String> {
    if !raw.contains('%') && !raw.contains('+') {
        return Some(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = raw.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Every binding of every RPC in `pool` that carries a `google.api.http` rule.
pub(crate) fn routes(pool: &DescriptorPool) -> Result<Vec<Route>, String> {
    let Some(http) = pool.get_extension_by_name("google.api.http") else {
        return Ok(Vec::new());
    };
    let mut routes = Vec::new();
    for service in pool.services() {
        for rpc in service.methods() {
            let options = rpc.options();
            if !options.has_extension(&http) {
                continue;
            }
            let Value::Message(rule) = options.get_extension(&http).into_owned() else {
                return Err(format!(
                    "{}: google.api.http is not a message",
                    rpc.full_name()
                ));
            };
            let grpc_path = format!("/{}/{}", service.full_name(), rpc.name());
            let mut rules = vec![rule.clone()];
            if let Some(Value::List(more)) = rule
                .get_field_by_name("additional_bindings")
                .map(Cow::into_owned)
            {
                rules.extend(more.into_iter().filter_map(|v| match v {
                    Value::Message(m) => Some(m),
                    _ => None,
                }));
            }
            for (binding, rule) in rules.iter().enumerate() {
                routes.push(route(&rpc, &grpc_path, rule, binding)?);
            }
        }
    }
    // The most specific template first, so `/v1/check:batch` is tried before anything looser.
    routes.sort_by_key(|r| std::cmp::Reverse(r.template.literals()));
    Ok(routes)
}

fn route(
    rpc: &MethodDescriptor,
    grpc_path: &str,
    rule: &DynamicMessage,
    binding: usize,
) -> Result<Route, String> {
    let text = |name: &str| match rule.get_field_by_name(name).as_deref() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let (method, template) = [
        ("get", http::Method::GET),
        ("post", http::Method::POST),
        ("put", http::Method::PUT),
        ("patch", http::Method::PATCH),
        ("delete", http::Method::DELETE),
    ]
    .into_iter()
    .find_map(|(field, method)| text(field).map(|t| (method, t)))
    .ok_or_else(|| {
        format!(
            "{}: a google.api.http rule without a pattern",
            rpc.full_name()
        )
    })?;
    let template = Template::parse(&template)?;
    let input = rpc.input();
    for variable in template.variables() {
        field_path(&input, variable)
            .ok_or_else(|| format!("{}: no field {variable}", rpc.full_name()))?;
    }
    let body = match text("body").as_deref() {
        None => BodyMapping::None,
        Some("*") => BodyMapping::Whole,
        Some(field) => {
            input
                .get_field_by_name(field)
                .ok_or_else(|| format!("{}: no body field {field}", rpc.full_name()))?;
            BodyMapping::Field(field.to_owned())
        }
    };
    Ok(Route {
        method,
        template,
        body,
        grpc_path: grpc_path.to_owned(),
        rpc: rpc.clone(),
        binding,
    })
}

/// The field a dotted path names, from `message`.
pub(crate) fn field_path(
    message: &MessageDescriptor,
    path: &str,
) -> Option<prost_reflect::FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        match field.kind() {
            prost_reflect::Kind::Message(inner) => current = inner,
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_literals_variables_and_verbs() {
        let t = Template::parse("/v1/roles/{role}/permissions/{permission}").unwrap();
        assert_eq!(
            t.matches("/v1/roles/editor/permissions/docs%2Fread"),
            Some(vec![
                ("role".into(), "editor".into()),
                ("permission".into(), "docs/read".into())
            ])
        );
        assert_eq!(t.matches("/v1/roles/editor/permissions"), None);
        assert_eq!(t.matches("/v1/roles//permissions/x"), None);
        assert_eq!(t.matches("/v1/roles/a/permissions/%zz"), None);

        let verb = Template::parse("/v1/changeRequests/{change_request_id}:approve").unwrap();
        assert_eq!(verb.verb.as_deref(), Some("approve"));
        assert_eq!(
            verb.matches("/v1/changeRequests/abc:approve"),
            Some(vec![("change_request_id".into(), "abc".into())])
        );
        assert_eq!(verb.matches("/v1/changeRequests/abc:reject"), None);
        assert_eq!(verb.matches("/v1/changeRequests/abc"), None);

        // A colon inside a variable's value is not a verb when the template has none.
        let plain = Template::parse("/v1/permissions/{permission}").unwrap();
        assert_eq!(
            plain.matches("/v1/permissions/warden:roles:read"),
            Some(vec![("permission".into(), "warden:roles:read".into())])
        );
        let literal = Template::parse("/v1/check:batch").unwrap();
        assert_eq!(literal.matches("/v1/check:batch"), Some(vec![]));
        assert_eq!(literal.matches("/v1/check"), None);
        assert!(Template::parse("v1/x").is_err());
        assert!(Template::parse("/v1/{x=**}").is_err());
    }
}
