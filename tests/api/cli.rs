//! The admin CLI (issue 16, items 3 and 4): the built `warden` binary, run as a subprocess
//! against a real server, as an operator or a CI job would, with WARDEN_SERVER and WARDEN_TOKEN.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tonic::Code;

use crate::backend_tests;
use crate::helpers::*;

/// What one run of the binary did.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }
}

/// The binary, pointed at `app` with a token for `sub`.
fn warden(app: &TestApp, sub: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .env("WARDEN_SERVER", format!("http://{}", app.addr))
        .env("WARDEN_TOKEN", token_with(json!({ "sub": sub })))
        .env_remove("WARDEN_CACERT");
    command
}

/// Runs the binary to completion off the runtime's threads (the server shares them).
async fn run(mut command: Command, args: &[&str]) -> Ran {
    command.args(args);
    let out = tokio::task::spawn_blocking(move || command.output().expect("warden runs"))
        .await
        .unwrap();
    Ran {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn admin(app: &TestApp, args: &[&str]) -> Ran {
    run(warden(app, ADMIN), args).await
}

#[track_caller]
fn assert_exit(ran: &Ran, code: i32) {
    assert_eq!(ran.code, code, "unexpected exit code: {ran:#?}");
}

fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

const COMPANY: &str = "\
permissions:
  - name: docs:read
    description: Read documents
  - name: docs:write
roles:
  - name: reader
    permissions: [docs:read]
  - name: editor
    description: Writes, and reads through reader
    permissions: [docs:write]
    included_roles: [reader]
groups:
  - name: writers
    members: [bob, carol]
assignments:
  - role: editor
    identity_id: alice
    scope: departments/eng
    expire_time: 2099-12-31T00:00:00Z
    reason: owns eng docs
  - role: reader
    group: writers
";

/// The company after a reorganisation: only reading is left.
const SMALLER: &str = "\
permissions:
  - name: docs:read
    description: Read documents
roles:
  - name: reader
    permissions: [docs:read]
";

async fn get_role(app: &TestApp, name: &str) -> Result<Role, tonic::Status> {
    app.roles()
        .get_role(authed(
            ADMIN,
            GetRoleRequest {
                role: Some(role_name(name)),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Starts `warden watch`, runs `during`, then reads the watch's JSON lines until one matches
/// and stops it.
async fn watch_during<T>(
    mut command: Command,
    args: &[&str],
    during: impl Future<Output = T>,
    wanted: impl Fn(&Value) -> bool + Send + 'static,
) -> (T, Value) {
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("warden watch starts");
    let stdout = child.stdout.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines() {
            let value: Value = serde_json::from_str(&line.ok()?).ok()?;
            if wanted(&value) {
                return Some(value);
            }
        }
        None
    });
    let done = during.await;
    let found = tokio::time::timeout(Duration::from_secs(30), reader).await;
    // Killing it ends the reader too (its stdout closes), whatever happened.
    let _ = child.kill();
    let _ = child.wait();
    let found = found
        .expect("watch printed the change within 30 s")
        .unwrap()
        .expect("watch printed the change before it ended");
    (done, found)
}

backend_tests! {
    async fn plan_apply_export_and_prune_a_configuration_file(app) {
        let dir = tempfile::tempdir().unwrap();
        let company = file(dir.path(), "company.yaml", COMPANY);

        // --plan: the steps and who gains what, and nothing is made.
        let plan = admin(&app, &["apply", "-f", arg(&company), "--plan"]).await;
        assert_exit(&plan, 0);
        for step in ["+ create permission docs:read", "+ create role editor (+docs:write)", "~ update role editor (includes +reader)",
                     "+ create group writers", "+ create assignment editor -> alice on departments/eng"] {
            assert!(plan.stdout.contains(step), "no `{step}` in the plan:\n{}", plan.stdout);
        }
        assert!(plan.stdout.contains("carol: +docs:read"), "{}", plan.stdout);
        assert!(plan.stdout.contains("alice: +docs:read on departments/eng, +docs:write on departments/eng"), "{}", plan.stdout);
        assert!(plan.stdout.contains("nothing was changed"), "{}", plan.stdout);
        assert_eq!(get_role(&app, "editor").await.unwrap_err().code(), Code::NotFound, "a plan creates nothing");
        assert_exit(&admin(&app, &["roles", "get", "editor"]).await, 2);

        // Applied: the same steps, a revision, and the decisions follow.
        let applied = admin(&app, &["apply", "-f", arg(&company)]).await;
        assert_exit(&applied, 0);
        assert!(applied.stdout.contains("+ create role editor"), "{}", applied.stdout);
        assert!(applied.stdout.contains("at revision"), "{}", applied.stdout);
        assert!(app.check("carol", "docs:read").await);
        let editor = get_role(&app, "editor").await.unwrap();
        assert_eq!(editor.description, "Writes, and reads through reader");
        let alice = admin(&app, &["check", "alice", "docs:write", "--resource", "departments/eng/projects/apollo"]).await;
        assert_exit(&alice, 0);

        // Exported (YAML, and JSON), each applies back as a no-op.
        let exported = admin(&app, &["export"]).await;
        assert_exit(&exported, 0);
        assert!(exported.stdout.contains("included_roles:"), "{}", exported.stdout);
        assert!(exported.stdout.contains("expire_time: 2099-12-31T00:00:00Z"), "{}", exported.stdout);
        let yaml = file(dir.path(), "exported.yaml", &exported.stdout);
        let again = admin(&app, &["apply", "-f", arg(&yaml), "--prune"]).await;
        assert_exit(&again, 0);
        assert!(again.stdout.starts_with("no changes"), "{}", again.stdout);
        let exported = admin(&app, &["-o", "json", "export"]).await;
        assert_exit(&exported, 0);
        assert_eq!(exported.json()["roles"][0]["name"], "editor");
        let json_file = file(dir.path(), "exported.json", &exported.stdout);
        let again = admin(&app, &["apply", "-f", arg(&json_file)]).await;
        assert!(again.stdout.starts_with("no changes"), "{again:?}");

        // A smaller file with --prune deletes the rest (never the bootstrap admins' grants).
        let smaller = file(dir.path(), "smaller.yaml", SMALLER);
        let preview = admin(&app, &["-o", "json", "apply", "-f", arg(&smaller), "--prune", "--plan"]).await;
        assert_exit(&preview, 0);
        let steps: Vec<String> = preview.json()["plan"].as_array().unwrap().iter()
            .map(|s| format!("{} {} {}", s["action"].as_str().unwrap(), s["kind"].as_str().unwrap(), s["name"].as_str().unwrap()))
            .collect();
        assert!(steps.contains(&"PLAN_ACTION_DELETE role editor".to_owned()), "{steps:?}");
        assert!(get_role(&app, "editor").await.is_ok(), "a plan deletes nothing");
        let pruned = admin(&app, &["apply", "-f", arg(&smaller), "--prune"]).await;
        assert_exit(&pruned, 0);
        for step in ["- delete role editor", "- delete group writers", "- delete permission docs:write"] {
            assert!(pruned.stdout.contains(step), "no `{step}`:\n{}", pruned.stdout);
        }
        assert_exit(&admin(&app, &["roles", "get", "editor"]).await, 2);
        assert_exit(&admin(&app, &["roles", "get", "reader"]).await, 0);
        assert!(app.check(ADMIN, "warden:roles:write").await);
    }

    async fn exit_codes_say_what_went_wrong(app) {
        let dir = tempfile::tempdir().unwrap();
        assert_exit(&admin(&app, &["permissions", "create", "docs:read", "--description", "Read documents"]).await, 0);
        assert_exit(&admin(&app, &["permissions", "create", "docs:write"]).await, 0);
        assert_exit(&admin(&app, &["roles", "create", "reader", "--permission", "docs:read"]).await, 0);
        let assigned = admin(&app, &["-o", "json", "assignments", "assign", "reader", "alice", "--scope", "departments/eng"]).await;
        assert_exit(&assigned, 0);
        assert_eq!(assigned.json()["assignment"]["scope"], "departments/eng");

        // check: 0 when allowed, 7 when denied; explain says where she holds it instead.
        let allowed = admin(&app, &["check", "alice", "docs:read", "--resource", "departments/eng/projects/x"]).await;
        assert_exit(&allowed, 0);
        assert!(allowed.stdout.starts_with("allowed"), "{allowed:?}");
        let denied = admin(&app, &["check", "alice", "docs:read", "--explain"]).await;
        assert_exit(&denied, 7);
        assert!(denied.stdout.contains("held elsewhere: role reader"), "{denied:?}");
        let denied = admin(&app, &["-o", "json", "check", "bob", "docs:read"]).await;
        assert_exit(&denied, 7);
        assert_eq!(denied.json()["allowed"], false);
        assert_eq!(denied.json()["reason"], "CHECK_REASON_NO_GRANT");

        // 2: not found, with the message and reason on stderr.
        let missing = admin(&app, &["roles", "get", "nope"]).await;
        assert_exit(&missing, 2);
        assert!(missing.stderr.contains("NOT_FOUND"), "{missing:?}");
        // 4: already exists.
        let twice = admin(&app, &["permissions", "create", "docs:read"]).await;
        assert_exit(&twice, 4);
        assert!(twice.stderr.contains("ALREADY_EXISTS"), "{twice:?}");
        // 3: escalation. eve may write roles and assignments but holds no docs:write.
        assert_exit(&admin(&app, &["roles", "create", "catalogue-admin", "-p",
            "warden:permissions:write,warden:permissions:read,warden:roles:write,warden:roles:read,warden:groups:read,warden:groups:write,warden:assignments:read,warden:assignments:write,docs:read"]).await, 0);
        assert_exit(&admin(&app, &["assignments", "assign", "catalogue-admin", "eve"]).await, 0);
        let company = file(dir.path(), "company.yaml", COMPANY);
        let escalation = run(warden(&app, "eve"), &["apply", "-f", arg(&company)]).await;
        assert_exit(&escalation, 3);
        assert!(escalation.stderr.contains("docs:write"), "{escalation:?}");
        assert!(escalation.stderr.contains("PERMISSION_DENIED"), "{escalation:?}");
        let sneaky = run(warden(&app, "eve"), &["roles", "create", "sneaky", "-p", "docs:write"]).await;
        assert_exit(&sneaky, 3);
        // 3: no token.
        let mut anonymous = warden(&app, ADMIN);
        anonymous.env_remove("WARDEN_TOKEN");
        assert_exit(&run(anonymous, &["roles", "list"]).await, 3);
        // 1: usage, and a document the server refuses field by field.
        assert_exit(&admin(&app, &["roles"]).await, 1);
        assert_exit(&admin(&app, &["apply", "-f", "/no/such/file.yaml"]).await, 1);
        let typo = file(dir.path(), "typo.yaml", "roles:\n  - name: r\n    permision: [docs:read]\n");
        let refused = admin(&app, &["apply", "-f", arg(&typo)]).await;
        assert_exit(&refused, 1);
        assert!(refused.stderr.contains("permision"), "{refused:?}");
        let bad = file(dir.path(), "bad.yaml", "permissions:\n  - name: docs:read\n  - name: docs:read\n");
        let refused = admin(&app, &["apply", "-f", arg(&bad)]).await;
        assert_exit(&refused, 1);
        assert!(refused.stderr.contains("configuration.permissions[1].name"), "{refused:?}");
        // 5: nothing listening.
        let unreachable = admin(&app, &["--server", "http://127.0.0.1:1", "roles", "list"]).await;
        assert_exit(&unreachable, 5);
        // Lists print aligned tables.
        let roles = admin(&app, &["roles", "list"]).await;
        assert_exit(&roles, 0);
        assert!(roles.stdout.lines().next().unwrap().starts_with("NAME "), "{roles:?}");
        assert!(roles.stdout.lines().any(|l| l.starts_with("reader ") && l.contains("docs:read")), "{roles:?}");
    }

    async fn change_requests_are_approved_and_rejected_and_changes_watched(app) {
        let dir = tempfile::tempdir().unwrap();
        let gated = file(dir.path(), "gated.yaml", "\
permissions:
  - name: pay:run
roles:
  - name: payer
    permissions: [pay:run]
    approval_policy:
      expire_after: 7d
      kinds: [assign]
assignments:
  - role: payer
    identity_id: frank
");
        let applied = admin(&app, &["-o", "json", "apply", "-f", arg(&gated)]).await;
        assert_exit(&applied, 0);
        let filed = applied.json();
        assert_eq!(filed["changeRequests"][0]["status"], "CHANGE_REQUEST_STATUS_PENDING");
        let frank = filed["changeRequests"][0]["id"].as_str().unwrap().to_owned();
        let revision = filed["revision"].as_u64().unwrap();
        // The requester cannot approve its own request; a second admin can.
        let own = admin(&app, &["approve", &frank]).await;
        assert_exit(&own, 3);
        assert!(own.stderr.contains("SELF_APPROVAL"), "{own:?}");
        let approved = run(warden(&app, ADMIN2), &["approve", &frank, "--comment", "ok"]).await;
        assert_exit(&approved, 0);
        assert!(approved.stdout.contains("APPLIED"), "{approved:?}");
        assert_exit(&admin(&app, &["check", "frank", "pay:run"]).await, 0);

        let asked = admin(&app, &["-o", "json", "assignments", "assign", "payer", "grace"]).await;
        assert_exit(&asked, 0);
        let grace = asked.json()["changeRequest"]["id"].as_str().unwrap().to_owned();
        let rejected = run(warden(&app, ADMIN2), &["-o", "json", "reject", &grace, "--comment", "no"]).await;
        assert_exit(&rejected, 0);
        assert_eq!(rejected.json()["status"], "CHANGE_REQUEST_STATUS_REJECTED");
        assert_exit(&admin(&app, &["check", "grace", "pay:run"]).await, 7);

        // watch: every change after a revision, one JSON object a line, then live.
        let from = revision.to_string();
        let ((), first) = watch_during(warden(&app, ADMIN), &["-o", "json", "watch", "--from", &from], async {}, |_| true).await;
        assert_eq!(first["revision"], revision + 1, "the approval is the first change after the apply: {first}");
        let (now, live) = watch_during(warden(&app, ADMIN), &["-o", "json", "watch", "--from", &from],
            app.create_permission("watched:live"), |change| change["kind"] == "CHANGE_KIND_PERMISSION_CREATED").await;
        assert_eq!(live["revision"], now.revision, "{live}");
    }
}
