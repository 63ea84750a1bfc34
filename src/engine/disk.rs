//! The index on local disk (`WARDEN_SNAPSHOT_PATH`, issue 14): written every interval, and once
//! more at shutdown, atomically (a temporary file, synced, then renamed over the last one), so a
//! replica that starts while the database is unreachable can answer decisions from it, within
//! the staleness allowance measured from the moment the snapshot was known current.
//!
//! The file is text, one record per line, each line a one-letter kind and a JSON value:
//! `H` the header (format and the moment the content was known current), then per tenant `T`
//! (tenant and the revision its content is exact at) followed by its `D` deltas, and `E` with
//! the number of tenants last. A file without its `E` line is refused, so a torn file (which
//! the rename should already rule out) is never served.

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Engine, Freshness};
use crate::domain::{Delta, Revision, TenantId};
use crate::shutdown::{Phase, Shutdown};

/// Written in the header; a file of another format is refused rather than misread.
const FORMAT: &str = "warden-index-snapshot/1";

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    format: String,
    /// Every change committed before this moment is in the file.
    current_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TenantHeader {
    tenant: TenantId,
    revision: Revision,
}

#[derive(Debug, Serialize, Deserialize)]
struct End {
    tenants: usize,
}

/// What a snapshot file holds.
#[derive(Debug)]
pub struct LocalSnapshot {
    /// When the content was last known current: the staleness allowance runs from here.
    pub current_at: DateTime<Utc>,
    /// Each tenant's deltas and the revision they are exact at, as `Engine::from_snapshot`
    /// takes them.
    pub tenants: Vec<(TenantId, Revision, Vec<Delta>)>,
}

/// What one write did, for the log.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub tenants: usize,
    pub deltas: u64,
    pub bytes: u64,
    pub took: Duration,
}

impl Engine {
    /// Writes every tenant's index to `path` atomically. Each tenant is exported under its read
    /// lock, so its content is exact at the revision written beside it (tenants are independent,
    /// as everywhere else). Blocking: run it off the async workers.
    pub fn write_snapshot(
        &self,
        path: &Path,
        current_at: DateTime<Utc>,
    ) -> std::io::Result<Written> {
        let started = Instant::now();
        let partial = partial_path(path);
        let file = File::create(&partial)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        line(
            &mut out,
            b'H',
            &Header {
                format: FORMAT.to_owned(),
                current_at,
            },
        )?;
        let mut slots: Vec<(TenantId, Arc<super::TenantSlot>)> = self
            .tenants
            .read()
            .iter()
            .map(|(tenant, slot)| (tenant.clone(), Arc::clone(slot)))
            .collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        let mut deltas = 0u64;
        for (tenant, slot) in &slots {
            let index = slot.index.read();
            let revision = slot.revision();
            line(
                &mut out,
                b'T',
                &TenantHeader {
                    tenant: tenant.clone(),
                    revision,
                },
            )?;
            index.export(&mut |delta| {
                deltas += 1;
                line(&mut out, b'D', &delta)
            })?;
        }
        line(
            &mut out,
            b'E',
            &End {
                tenants: slots.len(),
            },
        )?;
        let file = out
            .into_inner()
            .map_err(std::io::IntoInnerError::into_error)?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&partial, path)?;
        // The rename itself is durable once the directory is synced (best effort: not every
        // platform lets a directory be opened).
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(dir) = File::open(dir)
        {
            let _ = dir.sync_all();
        }
        Ok(Written {
            tenants: slots.len(),
            deltas,
            bytes,
            took: started.elapsed(),
        })
    }
}

fn line<T: Serialize>(out: &mut BufWriter<File>, kind: u8, value: &T) -> std::io::Result<()> {
    out.write_all(&[kind, b' '])?;
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Reads a snapshot file whole. Errors name the line and what is wrong with it.
pub fn read_snapshot(path: &Path) -> Result<LocalSnapshot, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut current_at = None;
    let mut tenants: Vec<(TenantId, Revision, Vec<Delta>)> = Vec::new();
    let mut ended = false;
    for (n, text) in BufReader::with_capacity(1 << 20, file).lines().enumerate() {
        let at = || format!("{} line {}", path.display(), n + 1);
        let text = text.map_err(|e| format!("{}: {e}", at()))?;
        if ended {
            return Err(format!("{}: content after the end record", at()));
        }
        let (kind, json) = text
            .split_once(' ')
            .ok_or_else(|| format!("{}: not a snapshot record", at()))?;
        let bad = |e: serde_json::Error| format!("{}: {e}", at());
        match (kind, &current_at) {
            ("H", None) => {
                let header: Header = serde_json::from_str(json).map_err(bad)?;
                if header.format != FORMAT {
                    return Err(format!(
                        "{}: format {:?}, this release reads {FORMAT:?}",
                        at(),
                        header.format
                    ));
                }
                current_at = Some(header.current_at);
            }
            ("H", Some(_)) => return Err(format!("{}: a second header", at())),
            (_, None) => return Err(format!("{}: no header first", at())),
            ("T", Some(_)) => {
                let t: TenantHeader = serde_json::from_str(json).map_err(bad)?;
                tenants.push((t.tenant, t.revision, Vec::new()));
            }
            ("D", Some(_)) => {
                let delta: Delta = serde_json::from_str(json).map_err(bad)?;
                let (_, _, deltas) = tenants
                    .last_mut()
                    .ok_or_else(|| format!("{}: a delta before any tenant", at()))?;
                deltas.push(delta);
            }
            ("E", Some(_)) => {
                let end: End = serde_json::from_str(json).map_err(bad)?;
                if end.tenants != tenants.len() {
                    return Err(format!(
                        "{}: the end record counts {} tenants, the file holds {}",
                        at(),
                        end.tenants,
                        tenants.len()
                    ));
                }
                ended = true;
            }
            (other, Some(_)) => return Err(format!("{}: unknown record kind {other:?}", at())),
        }
    }
    match (current_at, ended) {
        (Some(current_at), true) => Ok(LocalSnapshot {
            current_at,
            tenants,
        }),
        _ => Err(format!("{}: incomplete (no end record)", path.display())),
    }
}

/// Writes the snapshot every `interval` while the index moved since the last write, and once
/// more when the server stops, until then. The content is known current now while the database
/// answers, else as of the last completed catch-up.
pub async fn keep_snapshot(
    engine: Arc<Engine>,
    freshness: Arc<Freshness>,
    path: PathBuf,
    interval: Duration,
    shutdown: Shutdown,
) {
    let stopped = shutdown.reached(Phase::Stopped);
    tokio::pin!(stopped);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Vec<(TenantId, Revision)>> = None;
    loop {
        let last_round = tokio::select! {
            () = &mut stopped => true,
            _ = ticker.tick() => false,
        };
        let mut revisions = engine.applied_revisions();
        revisions.sort();
        if last.as_ref() != Some(&revisions) {
            let current_at = freshness.known_current_at(Utc::now());
            let (engine, to) = (Arc::clone(&engine), path.clone());
            let written =
                tokio::task::spawn_blocking(move || engine.write_snapshot(&to, current_at)).await;
            match written {
                Ok(Ok(w)) => {
                    tracing::debug!(
                        tenants = w.tenants,
                        deltas = w.deltas,
                        bytes = w.bytes,
                        took_ms = w.took.as_millis(),
                        "index snapshot written"
                    );
                    last = Some(revisions);
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, path = %path.display(), "index snapshot not written")
                }
                Err(e) => tracing::warn!(error = %e, "index snapshot task failed"),
            }
        }
        if last_round {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdentityId, IdentityKind, PermissionId, RoleId, Scope};

    fn engine() -> Engine {
        let (p, r) = (PermissionId::new(), RoleId::new());
        let deltas = vec![
            Delta::PermissionPut {
                id: p,
                name: "docs:read".into(),
            },
            Delta::RolePut {
                id: r,
                name: "reader".into(),
                permissions: vec![p],
                record: None,
                included: Vec::new(),
            },
            Delta::AssignmentPut {
                id: crate::domain::AssignmentId::new(),
                role: r,
                identity: IdentityId::parse("identity", "alice").unwrap(),
                kind: IdentityKind::User,
                expire_time: None,
                scope: Scope::parse("scope", "departments/eng").unwrap(),
            },
        ];
        Engine::from_snapshot(vec![
            (TenantId::parse("acme").unwrap(), Revision(7), deltas),
            (TenantId::parse("empty").unwrap(), Revision(3), Vec::new()),
        ])
    }

    #[test]
    fn a_written_snapshot_reads_back_to_the_same_answers_and_revisions() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.snapshot");
        let known = Utc::now() - chrono::Duration::seconds(5);

        // Act
        let written = engine().write_snapshot(&path, known).unwrap();
        let read = read_snapshot(&path).unwrap();

        // Assert
        assert_eq!((written.tenants, written.deltas), (2, 3));
        assert!(!partial_path(&path).exists(), "renamed into place");
        assert_eq!(read.current_at, known);
        let loaded = Engine::from_snapshot(read.tenants);
        let acme = TenantId::parse("acme").unwrap();
        assert_eq!(loaded.applied_revision(&acme), Revision(7));
        assert_eq!(
            loaded.applied_revision(&TenantId::parse("empty").unwrap()),
            Revision(3)
        );
        let on = |resource: &str| {
            loaded
                .read_tenant(&acme, |i| {
                    i.unwrap()
                        .check("alice", "docs:read", resource, Utc::now(), false)
                        .allowed
                })
                .0
        };
        assert!(on("departments/eng/x"));
        assert!(!on("departments/sales"));
    }

    #[test]
    fn a_torn_or_foreign_file_is_refused_with_the_line_that_is_wrong() {
        // Arrange
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.snapshot");
        engine().write_snapshot(&path, Utc::now()).unwrap();
        let whole = std::fs::read_to_string(&path).unwrap();
        let torn: String = whole.lines().take(3).map(|l| format!("{l}\n")).collect();
        let foreign = whole.replacen(FORMAT, "other/9", 1);
        let corrupt = whole.replacen("\"docs:read\"", "docs:read", 1);

        // Act, assert
        for (content, says) in [
            (torn.as_str(), "incomplete"),
            (foreign.as_str(), "this release reads"),
            (corrupt.as_str(), "line 3"),
            ("", "incomplete"),
        ] {
            std::fs::write(&path, content).unwrap();
            let err = read_snapshot(&path).unwrap_err();
            assert!(err.contains(says), "{err}");
        }
    }
}
