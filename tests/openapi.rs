//! `openapi.json` at the repository root is the OpenAPI document the server serves at
//! `/openapi.json`, generated from the protos' `google.api.http` rules and comments. This fails
//! when a proto change left it behind; `cargo run -- openapi > openapi.json` renews it.

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = warden::grpc::openapi_json().expect("the document is generated");
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json"))
        .expect("openapi.json is committed");
    assert!(
        generated == committed,
        "openapi.json is not current: run `cargo run -- openapi > openapi.json` and commit it"
    );
    // Every RPC of the contract has a route.
    let document: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let operations: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert!(operations >= 50, "{operations} operations");
}
