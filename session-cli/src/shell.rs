//! Shared by the `env` and `exec` commands of the providers: quoting for
//! `export` lines and running a command with a session's variables.

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
    match status.code() {
        Some(0) => Ok(String::new()),
        Some(code) => Err(Failure::Exit(u8::try_from(code).unwrap_or(1))),
        None => Err(Failure::Other(format!(
            "{:?} was ended by a signal",
            command[0]
        ))),
    }
}
