//! The API contract documents itself: every service, RPC, message, field (oneof members
//! included), enum and enum value declared in `proto/warden/v1/*.proto` carries a comment, so
//! `grpcurl describe` (server reflection serves these same descriptors) explains the API.
//!
//! The rule is read from the descriptor set the build embeds (`warden::proto::FILE_DESCRIPTOR_SET`),
//! which protoc writes with its source info: a declaration is documented when protoc attached a
//! non-blank leading comment to it (the `//` lines directly above it, with no blank line between)
//! or a trailing one (after it on the same line, or on the next line when a blank line follows).
//! Not checked: oneof wrappers, options, reserved ranges, and `syntax`, `package` and `import`
//! lines. Nested messages and enums are checked like top-level ones; map-entry messages, which
//! protoc synthesizes, are not.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use prost::Message as _;
use prost_types::source_code_info::Location;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// Field numbers of `google/protobuf/descriptor.proto`, as source-info paths use them.
mod tag {
    /// FileDescriptorProto
    pub const FILE_MESSAGE: i32 = 4;
    pub const FILE_ENUM: i32 = 5;
    pub const FILE_SERVICE: i32 = 6;
    /// DescriptorProto
    pub const MESSAGE_FIELD: i32 = 2;
    pub const MESSAGE_NESTED: i32 = 3;
    pub const MESSAGE_ENUM: i32 = 4;
    /// EnumDescriptorProto
    pub const ENUM_VALUE: i32 = 2;
    /// ServiceDescriptorProto
    pub const SERVICE_METHOD: i32 = 2;
}

/// The directory the contract lives in, relative to the repository root.
const CONTRACT_DIR: &str = "proto/warden/v1";

/// One declaration that must be documented.
struct Declaration {
    kind: &'static str,
    name: String,
    path: Vec<i32>,
}

fn child(path: &[i32], tag: i32, index: usize) -> Vec<i32> {
    let mut p = path.to_vec();
    p.push(tag);
    p.push(i32::try_from(index).expect("fewer than 2^31 declarations"));
    p
}

fn enumeration(path: Vec<i32>, scope: &str, e: &EnumDescriptorProto, out: &mut Vec<Declaration>) {
    let name = format!("{scope}.{}", e.name());
    for (i, v) in e.value.iter().enumerate() {
        out.push(Declaration {
            kind: "enum value",
            name: format!("{name}.{}", v.name()),
            path: child(&path, tag::ENUM_VALUE, i),
        });
    }
    out.push(Declaration {
        kind: "enum",
        name,
        path,
    });
}

fn message(path: Vec<i32>, scope: &str, m: &DescriptorProto, out: &mut Vec<Declaration>) {
    if m.options.as_ref().is_some_and(|o| o.map_entry()) {
        return;
    }
    let name = format!("{scope}.{}", m.name());
    for (i, f) in m.field.iter().enumerate() {
        out.push(Declaration {
            kind: "field",
            name: format!("{name}.{}", f.name()),
            path: child(&path, tag::MESSAGE_FIELD, i),
        });
    }
    for (i, nested) in m.nested_type.iter().enumerate() {
        message(child(&path, tag::MESSAGE_NESTED, i), &name, nested, out);
    }
    for (i, e) in m.enum_type.iter().enumerate() {
        enumeration(child(&path, tag::MESSAGE_ENUM, i), &name, e, out);
    }
    out.push(Declaration {
        kind: "message",
        name,
        path,
    });
}

/// Every declaration of `file` that must carry a comment.
fn declarations(file: &FileDescriptorProto) -> Vec<Declaration> {
    let package = file.package();
    let mut out = Vec::new();
    for (i, m) in file.message_type.iter().enumerate() {
        message(child(&[], tag::FILE_MESSAGE, i), package, m, &mut out);
    }
    for (i, e) in file.enum_type.iter().enumerate() {
        enumeration(child(&[], tag::FILE_ENUM, i), package, e, &mut out);
    }
    for (i, s) in file.service.iter().enumerate() {
        let path = child(&[], tag::FILE_SERVICE, i);
        let name = format!("{package}.{}", s.name());
        for (j, m) in s.method.iter().enumerate() {
            out.push(Declaration {
                kind: "rpc",
                name: format!("{name}.{}", m.name()),
                path: child(&path, tag::SERVICE_METHOD, j),
            });
        }
        out.push(Declaration {
            kind: "service",
            name,
            path,
        });
    }
    out
}

fn documented(location: &Location) -> bool {
    let blank = |c: &Option<String>| c.as_deref().is_none_or(|c| c.trim().is_empty());
    !blank(&location.leading_comments) || !blank(&location.trailing_comments)
}

/// The contract's files as the build compiled them (with source info).
fn contract_files() -> Vec<FileDescriptorProto> {
    let set = FileDescriptorSet::decode(warden::proto::FILE_DESCRIPTOR_SET)
        .expect("the embedded descriptor set decodes");
    set.file
        .into_iter()
        .filter(|f| f.name().starts_with("warden/v1/"))
        .collect()
}

#[test]
fn every_contract_file_is_in_the_embedded_descriptor_set_with_source_info() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CONTRACT_DIR);
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("the contract directory is readable")
        .map(|e| {
            e.expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".proto"))
        .map(|name| format!("warden/v1/{name}"))
        .collect();
    let files = contract_files();
    let built: BTreeSet<String> = files.iter().map(|f| f.name().to_owned()).collect();
    assert_eq!(
        on_disk, built,
        "every file in {CONTRACT_DIR} is compiled, and only those"
    );
    for f in &files {
        let locations = f.source_code_info.as_ref().map_or(0, |s| s.location.len());
        assert!(
            locations > 0,
            "{} was compiled without source info: the comment check below would see nothing \
             (protoc needs --include_source_info, which prost-build passes)",
            f.name()
        );
    }
}

#[test]
fn every_declaration_of_the_contract_has_a_doc_comment() {
    let mut total = 0;
    let mut missing: Vec<String> = Vec::new();
    for file in contract_files() {
        let locations: HashMap<&[i32], &Location> = file
            .source_code_info
            .as_ref()
            .map(|info| {
                info.location
                    .iter()
                    .map(|l| (l.path.as_slice(), l))
                    .collect()
            })
            .unwrap_or_default();
        let mut undocumented: Vec<(i32, String)> = Vec::new();
        for d in declarations(&file) {
            total += 1;
            match locations.get(d.path.as_slice()) {
                Some(l) if documented(l) => {}
                Some(l) => {
                    // Spans are zero-based: [start line, start column, ...].
                    let line = l.span.first().copied().unwrap_or(-1) + 1;
                    undocumented.push((line, format!("{} {}", d.kind, d.name)));
                }
                None => undocumented.push((0, format!("{} {} (no source info)", d.kind, d.name))),
            }
        }
        undocumented.sort();
        missing.extend(
            undocumented
                .into_iter()
                .map(|(line, what)| format!("proto/{}:{line}: {what}", file.name())),
        );
    }
    println!(
        "{} of {total} declarations in {CONTRACT_DIR} documented",
        total - missing.len()
    );
    assert!(total > 0, "no declarations found in {CONTRACT_DIR}");
    assert!(
        missing.is_empty(),
        "{} of {total} declarations have no doc comment (a `//` comment directly above, or \
         trailing on the same line):\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}
