//! `warden apply` and `warden export`: configuration as code.

use std::io::Read as _;
use std::path::Path;

use super::args::ApplyArgs;
use super::client::Client;
use super::document::{Document, Format};
use super::exit::{Failure, Outcome};
use super::json::ToJson as _;
use super::output::{Output, line, out, structured};
use warden_client::pb;

pub(crate) async fn apply(client: &Client, args: ApplyArgs) -> Result<Outcome, Failure> {
    let (text, format) = read(&args.file)?;
    let doc = Document::parse(&text, format)
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.file.display())))?;
    let configuration = doc
        .into_pb()
        .map_err(|e| Failure::Usage(format!("{}: {e}", args.file.display())))?;
    let response = client
        .configuration()
        .apply_configuration(client.request(pb::ApplyConfigurationRequest {
            configuration: Some(configuration),
            prune: args.prune,
            dry_run: args.plan,
            wait_for_propagation: false,
        }))
        .await?
        .into_inner();
    match client.output {
        Some(format @ (Output::Json | Output::Yaml)) => structured(format, &response.to_json())?,
        Some(Output::Table) | None => print_outcome(&response, args.plan),
    }
    Ok(Outcome::Done)
}

pub(crate) async fn export(client: &Client) -> Result<Outcome, Failure> {
    let format = match client.output {
        None | Some(Output::Yaml) => Format::Yaml,
        Some(Output::Json) => Format::Json,
        Some(Output::Table) => {
            return Err(Failure::Usage(
                "export prints a configuration file: -o yaml (the default) or -o json".into(),
            ));
        }
    };
    let configuration = client
        .configuration()
        .export_configuration(client.request(pb::ExportConfigurationRequest {}))
        .await?
        .into_inner();
    let text = Document::from_pb(configuration)
        .and_then(|doc| doc.print(format))
        .map_err(Failure::Other)?;
    out(&text);
    Ok(Outcome::Done)
}

/// The file's text and format; `-` is standard input (YAML, which JSON also is).
fn read(path: &Path) -> Result<(String, Format), Failure> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::Usage(format!("standard input: {e}")))?;
        return Ok((text, Format::Yaml));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    Ok((text, if json { Format::Json } else { Format::Yaml }))
}

fn print_outcome(response: &pb::ApplyConfigurationResponse, plan: bool) {
    if !response.changed {
        line(&format!("no changes (revision {})", response.revision));
        return;
    }
    for step in &response.plan {
        line(&plan_line(step));
    }
    if plan {
        line("");
        line("impact:");
        match &response.impact {
            Some(impact) if !impact.identities.is_empty() => {
                for identity in &impact.identities {
                    line(&format!("  {}", impact_line(identity)));
                }
            }
            _ => {
                line("  no one gains or loses a permission");
            }
        }
        line("");
        line(&format!(
            "plan only: nothing was changed ({} changes)",
            response.plan.len()
        ));
        return;
    }
    line("");
    line(&format!(
        "applied {} changes at revision {}",
        response.plan.len(),
        response.revision
    ));
    if !response.change_requests.is_empty() {
        line("change requests filed, pending approval:");
        for cr in &response.change_requests {
            let role = cr.role.as_ref().map_or("", |r| r.name.as_str());
            let who = cr.identity.as_ref().map_or("", |i| i.id.as_str());
            let scope = if cr.scope.is_empty() {
                String::new()
            } else {
                format!(" on {}", cr.scope)
            };
            line(&format!("  {}  {role} -> {who}{scope}", cr.id));
        }
    }
}

/// `+ create role editor (+docs:read)`, `~ update ...`, `- delete ...`.
pub(crate) fn plan_line(step: &pb::PlanStep) -> String {
    let (mark, verb) = match pb::PlanAction::try_from(step.action) {
        Ok(pb::PlanAction::Create) => ("+", "create"),
        Ok(pb::PlanAction::Update) => ("~", "update"),
        Ok(pb::PlanAction::Delete) => ("-", "delete"),
        Ok(pb::PlanAction::Unspecified) | Err(_) => ("?", "change"),
    };
    let mut text = format!("{mark} {verb} {} {}", step.kind, step.name);
    if !step.detail.is_empty() {
        text.push_str(&format!(" ({})", step.detail));
    }
    text
}

/// `alice: +docs:read, +docs:write on departments/eng, -docs:delete`.
pub(crate) fn impact_line(identity: &pb::IdentityImpact) -> String {
    let mut changes: Vec<String> = Vec::new();
    changes.extend(identity.gained.iter().map(|p| format!("+{p}")));
    changes.extend(
        identity
            .gained_scoped
            .iter()
            .map(|s| format!("+{} on {}", s.permission, s.scope)),
    );
    changes.extend(identity.lost.iter().map(|p| format!("-{p}")));
    changes.extend(
        identity
            .lost_scoped
            .iter()
            .map(|s| format!("-{} on {}", s.permission, s.scope)),
    );
    format!("{}: {}", identity.identity_id, changes.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_steps_read_as_a_diff() {
        let step = |action: pb::PlanAction, kind: &str, name: &str, detail: &str| pb::PlanStep {
            action: action as i32,
            kind: kind.into(),
            name: name.into(),
            detail: detail.into(),
        };
        assert_eq!(
            plan_line(&step(pb::PlanAction::Create, "role", "editor", "")),
            "+ create role editor"
        );
        assert_eq!(
            plan_line(&step(
                pb::PlanAction::Update,
                "role",
                "editor",
                "+docs:write"
            )),
            "~ update role editor (+docs:write)"
        );
        assert_eq!(
            plan_line(&step(pb::PlanAction::Delete, "permission", "legacy:x", "")),
            "- delete permission legacy:x"
        );
        let impact = pb::IdentityImpact {
            identity_id: "alice".into(),
            gained: vec!["docs:read".into()],
            gained_scoped: vec![pb::ScopedPermission {
                permission: "docs:write".into(),
                scope: "departments/eng".into(),
            }],
            lost: vec!["docs:delete".into()],
            ..Default::default()
        };
        assert_eq!(
            impact_line(&impact),
            "alice: +docs:read, +docs:write on departments/eng, -docs:delete"
        );
    }
}
