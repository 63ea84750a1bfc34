//! Printing: aligned tables for people, JSON (or YAML) for scripts.

use std::io::Write as _;

use clap::ValueEnum;
use serde_json::Value;

use super::exit::Failure;

/// How a command prints its answer (`-o`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
    Yaml,
}

/// Writes to stdout. A closed pipe (`warden watch | head`) is not an error worth a panic: the
/// reader has what it wanted, so the write is dropped and `false` returned.
pub(crate) fn out(text: &str) -> bool {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_ok()
}

/// Prints `text` and a newline.
pub(crate) fn line(text: &str) -> bool {
    out(&format!("{text}\n"))
}

/// A message as JSON (pretty) or YAML.
pub(crate) fn structured(format: Output, value: &Value) -> Result<(), Failure> {
    let text = match format {
        Output::Yaml => yaml_serde::to_string(value)
            .map_err(|e| Failure::Usage(format!("cannot print YAML: {e}")))?,
        Output::Json | Output::Table => format!(
            "{}\n",
            serde_json::to_string_pretty(value).unwrap_or_default()
        ),
    };
    out(&text);
    Ok(())
}

/// Columns padded to their widest cell (the last one unpadded), a header line first.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let columns = headers.len();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            if i + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// `label: value` lines with the values aligned, empty values left out.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut text = String::new();
    for (label, value) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        text.push_str(&format!(
            "{label}:{}{value}\n",
            " ".repeat(width - label.len() + 2)
        ));
    }
    text
}

/// A cell for a possibly empty value.
pub(crate) fn cell(value: &str) -> String {
    if value.is_empty() {
        "-".to_owned()
    } else {
        value.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_every_column_but_the_last() {
        let text = table(
            &["NAME", "PERMISSIONS"],
            &[
                vec!["editor".into(), "docs:read,docs:write".into()],
                vec!["r".into(), "-".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME    PERMISSIONS\neditor  docs:read,docs:write\nr       -\n"
        );
    }

    #[test]
    fn fields_align_and_skip_empty_values() {
        let text = fields(&[
            ("name", "editor".into()),
            ("id", String::new()),
            ("revision", "3".into()),
        ]);
        assert_eq!(text, "name:      editor\nrevision:  3\n");
    }
}
