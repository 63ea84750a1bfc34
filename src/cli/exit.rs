//! Exit codes, and the one place an admin command's failure is printed.
//!
//! Scripts branch on the exit code, so it says what kind of failure it was (the README's table):
//! 0 ok, 1 usage or invalid argument, 2 not found, 3 permission denied or unauthenticated,
//! 4 conflict (failed precondition, already exists, aborted), 5 unavailable or deadline,
//! 6 anything else; `check` exits 7 on a denial.

use std::process::ExitCode;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use super::args::AdminCommand;
use super::client::Client;
use super::{ClientArgs, commands, configuration};
use crate::grpc::code_name;

pub(crate) const OK: u8 = 0;
pub const USAGE: u8 = 1;
pub(crate) const NOT_FOUND: u8 = 2;
pub(crate) const DENIED: u8 = 3;
pub(crate) const CONFLICT: u8 = 4;
pub(crate) const UNAVAILABLE: u8 = 5;
pub(crate) const OTHER: u8 = 6;
/// `warden check`: the identity may not.
pub(crate) const CHECK_DENIED: u8 = 7;

/// Why an admin command did not do what was asked.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A bad argument, file or document, found before calling the server.
    Usage(String),
    /// The server could not be reached.
    Unreachable(String),
    /// The server answered with an error.
    Rpc(Status),
    /// Anything else: an answer this build cannot print as asked.
    Other(String),
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Rpc(status)
    }
}

/// What a command that ran reports through its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Done,
    /// `check`'s answer was no.
    Denied,
}

/// Runs one admin command against the server and returns the process's exit code.
pub async fn run(args: ClientArgs, command: AdminCommand) -> ExitCode {
    let outcome = async {
        let client = Client::connect(&args).await?;
        match command {
            AdminCommand::Roles(roles) => commands::roles(&client, roles).await,
            AdminCommand::Permissions(permissions) => {
                commands::permissions(&client, permissions).await
            }
            AdminCommand::Groups(groups) => commands::groups(&client, groups).await,
            AdminCommand::Assignments(assignments) => {
                commands::assignments(&client, assignments).await
            }
            AdminCommand::Check(check) => commands::check(&client, check).await,
            AdminCommand::Approve(decide) => commands::decide(&client, decide, true).await,
            AdminCommand::Reject(decide) => commands::decide(&client, decide, false).await,
            AdminCommand::Watch(watch) => commands::watch(&client, watch).await,
            AdminCommand::Apply(apply) => configuration::apply(&client, apply).await,
            AdminCommand::Export => configuration::export(&client).await,
        }
    }
    .await;
    ExitCode::from(match outcome {
        Ok(Outcome::Done) => OK,
        Ok(Outcome::Denied) => CHECK_DENIED,
        Err(failure) => report(&failure),
    })
}

/// The exit code of a gRPC status code.
pub(crate) fn code_for(code: Code) -> u8 {
    match code {
        Code::Ok => OK,
        // OUT_OF_RANGE is an argument past what exists (a revision the log no longer holds).
        Code::InvalidArgument | Code::OutOfRange => USAGE,
        Code::NotFound => NOT_FOUND,
        Code::PermissionDenied | Code::Unauthenticated => DENIED,
        Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => CONFLICT,
        Code::Unavailable | Code::DeadlineExceeded => UNAVAILABLE,
        Code::Cancelled
        | Code::Unknown
        | Code::ResourceExhausted
        | Code::Unimplemented
        | Code::Internal
        | Code::DataLoss => OTHER,
    }
}

/// Prints the failure to stderr: the server's message, its code, the ErrorInfo reason and every
/// field violation (an invalid document names each bad field).
fn report(failure: &Failure) -> u8 {
    match failure {
        Failure::Usage(message) => {
            eprintln!("error: {message}");
            USAGE
        }
        Failure::Unreachable(message) => {
            eprintln!("error: {message}");
            UNAVAILABLE
        }
        Failure::Other(message) => {
            eprintln!("error: {message}");
            OTHER
        }
        Failure::Rpc(status) => {
            let details = status.get_error_details();
            let mut line = format!("error: {} [{}", status.message(), code_name(status.code()));
            if let Some(info) = details.error_info() {
                line.push_str(&format!(", reason {}", info.reason));
            }
            line.push(']');
            eprintln!("{line}");
            if let Some(bad) = details.bad_request() {
                for violation in &bad.field_violations {
                    let text = format!("{}: {}", violation.field, violation.description);
                    // (the message often lists them already)
                    if !status.message().contains(&text) {
                        eprintln!("  {text}");
                    }
                }
            }
            code_for(status.code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_documented_exit_code() {
        assert_eq!(code_for(Code::InvalidArgument), 1);
        assert_eq!(code_for(Code::NotFound), 2);
        assert_eq!(code_for(Code::PermissionDenied), 3);
        assert_eq!(code_for(Code::Unauthenticated), 3);
        assert_eq!(code_for(Code::FailedPrecondition), 4);
        assert_eq!(code_for(Code::AlreadyExists), 4);
        assert_eq!(code_for(Code::Aborted), 4);
        assert_eq!(code_for(Code::Unavailable), 5);
        assert_eq!(code_for(Code::DeadlineExceeded), 5);
        assert_eq!(code_for(Code::Internal), 6);
        assert_eq!(code_for(Code::ResourceExhausted), 6);
    }
}
