//! Cheap insurance for the house layering: no tonic in domain or engine, no sea_orm outside store.

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn layers_import_only_what_they_may() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    assert!(files.len() > 20, "found the sources");
    // Code mentions, not prose: `tonic::` paths and `use` lines.
    let uses = |text: &str, krate: &str| {
        text.contains(&format!("{krate}::")) || text.contains(&format!("use {krate}"))
    };
    for (path, text) in &files {
        let in_dir = |d: &str| path.contains(&format!("/src/{d}/"));
        if in_dir("domain") || in_dir("engine") {
            assert!(!uses(text, "tonic"), "{path} must not use tonic");
            assert!(!uses(text, "sea_orm"), "{path} must not use sea_orm");
        }
        if !in_dir("store") {
            assert!(!uses(text, "sea_orm"), "{path} must not use sea_orm");
        }
        if in_dir("service") || in_dir("store") {
            assert!(!uses(text, "tonic"), "{path} must not use tonic");
        }
    }
}
