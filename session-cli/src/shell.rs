//! Shared by the `env` and `exec` commands of the providers: quoting for
//! `export` lines and running a command with a session's variables.

// Shared by the provider modules: a build without some of them leaves
// some of these unused.
#![cfg_attr(
    not(all(feature = "aws", feature = "azure", feature = "redfish")),
    allow(dead_code)
)]

use clap::Args;

use crate::Failure;

/// The arguments of an `env` command.
#[derive(Debug, Args)]
pub(crate) struct EnvArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    pub(crate) session: String,

    /// Print even when standard output is a terminal.
    #[arg(long)]
    pub(crate) to_terminal: bool,
}

/// The arguments of an `exec` command.
#[derive(Debug, Args)]
pub(crate) struct ExecArgs {
    /// The session's id, or its name if unique.
    #[arg(value_name = "ID|NAME")]
    pub(crate) session: String,

    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub(crate) command: Vec<String>,
}

/// Single-quotes `value` for a POSIX shell.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `export NAME='value'` lines.
pub(crate) fn exports(vars: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (name, value) in vars {
        out.push_str(&format!("export {name}={}\n", quote(value)));
    }
    out
}

/// Refuses to print secrets to a terminal (they would stay in its
/// scrollback) unless `to_terminal`; `example` is the command to suggest.
pub(crate) fn refuse_terminal(to_terminal: bool, example: &str) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && !to_terminal {
        return Err(Failure::Usage(format!(
            "refusing to print credentials to a terminal; use eval \"$({example})\" or --to-terminal"
        )));
    }
    Ok(())
}

/// Runs `command` with the variables in `clear` removed and `set` set;
/// succeeds with no output when it exits 0, else exits with its status.
pub(crate) fn run(
    command: &[String],
    clear: &[&str],
    set: &[(&str, String)],
) -> Result<String, Failure> {
    let mut child = std::process::Command::new(&command[0]);
    child.args(&command[1..]);
    for name in clear {
        child.env_remove(name);
    }
    for (name, value) in set {
        child.env(name, value);
    }
    let status = child
        .status()
        .map_err(|e| Failure::Other(format!("cannot run {:?}: {e}", command[0])))?;
    exit_with(&command[0], status)
}

/// What a command's exit means for sessionctl: no output after 0, else
/// its status as ours (a signal is an error naming `program`).
pub(crate) fn exit_with(
    program: &str,
    status: std::process::ExitStatus,
) -> Result<String, Failure> {
    match status.code() {
        Some(0) => Ok(String::new()),
        Some(code) => Err(Failure::Exit(u8::try_from(code).unwrap_or(1))),
        None => Err(Failure::Other(format!("{program:?} was ended by a signal"))),
    }
}

/// The `exec` command of a provider: refuses to run inside another `exec`
/// of the same provider (two sessions' variables would mix), and runs the
/// command with the provider's identity variables cleared and the
/// session's set.
pub(crate) struct Exec {
    /// The command's name, e.g. `aws exec`.
    pub(crate) name: &'static str,
    /// Set to the session's name in the command's environment.
    pub(crate) marker: &'static str,
    /// Removed from the command's environment: anything that could give it
    /// another identity.
    pub(crate) cleared: &'static [&'static str],
}

impl Exec {
    /// Fails when this process runs inside the same `exec`.
    pub(crate) fn refuse_nesting(&self) -> Result<(), Failure> {
        match std::env::var(self.marker) {
            Ok(current) => Err(session_sdk::Error::invalid_input(
                self.name,
                format!(
                    "already inside `sessionctl {}` for {current}; nesting would mix two sessions' credentials",
                    self.name
                ),
            )
            .into()),
            Err(_) => Ok(()),
        }
    }

    /// Runs `command` with `vars` and the marker set to `session_name`.
    pub(crate) fn run(
        &self,
        command: &[String],
        session_name: &str,
        mut vars: Vec<(&'static str, String)>,
    ) -> Result<String, Failure> {
        vars.push((self.marker, session_name.to_owned()));
        run(command, self.cleared, &vars)
    }
}
