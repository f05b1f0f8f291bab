//! `gansde`: parse → resolve config → run → render. Only this file turns
//! errors into messages and exit codes.

/// `print!` for the report. A closed stdout (`gansde ... | head`) ends the
/// report quietly instead of panicking: results are on disk before it is printed.
macro_rules! out {
    ($($t:tt)*) => { $crate::print_report(format_args!($($t)*)) };
}

/// `println!` for the report (see `out!`).
macro_rules! outln {
    () => { $crate::print_report(format_args!("\n")) };
    ($($t:tt)*) => { $crate::print_report(format_args!("{}\n", format_args!($($t)*))) };
}

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;

use gansde::cluster::{self, Comm};
use gansde::job::JobError;
use gansde::study::StudyError;

/// Exit code: done.
const EXIT_OK: u8 = 0;
/// Exit code: failed (I/O or internal).
const EXIT_FAILED: u8 = 1;
/// Exit code: bad input.
const EXIT_BAD_INPUT: u8 = 2;

/// A user-facing error that maps to the bad-input exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadInput(String);

/// An error that some rank reported, with the exit code all ranks share;
/// `message` is None on the ranks that stay silent.
#[derive(Debug, thiserror::Error)]
#[error("{}", message.as_deref().unwrap_or(""))]
struct Agreed {
    code: u8,
    message: Option<String>,
}

fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(a) = e.downcast_ref::<Agreed>() {
        a.code
    } else if e.downcast_ref::<JobError>().is_some() || e.downcast_ref::<BadInput>().is_some() {
        EXIT_BAD_INPUT
    } else if let Some(s) = e.downcast_ref::<StudyError>() {
        s.exit_code()
    } else {
        EXIT_FAILED
    }
}

/// Makes every rank leave together: if any rank failed, rank 0 reports the
/// failure of the lowest failing rank once and all ranks exit with its code.
fn agree<T>(comm: &dyn Comm, local: anyhow::Result<T>) -> anyhow::Result<T> {
    if comm.size() == 1 || comm.max(local.is_err() as u64) == 0 {
        return local;
    }
    let mine = match &local {
        Err(e) => {
            let mut b = vec![exit_code(e)];
            b.extend_from_slice(format!("{e:#}").as_bytes());
            b
        }
        Ok(_) => Vec::new(),
    };
    let first = comm.gather(&mine).map(|all| all.into_iter().find(|m| !m.is_empty()).expect("a rank failed"));
    let code = comm.max(first.as_ref().map_or(0, |m| m[0] as u64)) as u8;
    Err(Agreed { code, message: first.map(|m| String::from_utf8_lossy(&m[1..]).into_owned()) }.into())
}

fn main() -> ExitCode {
    let comm = match cluster::start() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let root = comm.rank() == 0;
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Every rank sees the same arguments, so rank 0 speaks for all.
            // Help and version (stdout), and the help shown when no subcommand
            // is given (stderr, exit 2), stay as clap renders them; a bad flag
            // or argument is one line.
            if !e.use_stderr() || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                if root {
                    let _ = e.print();
                }
                return ExitCode::from(if e.use_stderr() { EXIT_BAD_INPUT } else { EXIT_OK });
            }
            if root {
                eprintln!("{}", one_line_clap_error(&e));
            }
            return ExitCode::from(EXIT_BAD_INPUT);
        }
    };
    let outcome = run(cli.command, comm.as_ref());
    match outcome {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            let silent = matches!(e.downcast_ref::<Agreed>(), Some(Agreed { message: None, .. }))
                || matches!(e.downcast_ref::<StudyError>(), Some(StudyError::Elsewhere { .. }));
            if !silent {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(exit_code(&e))
        }
    }
}

/// clap's message without the usage block, on one line, e.g. "error: invalid
/// value 'abc' for '--threads <THREADS>': ...; see 'gansde weak-error --help'".
fn one_line_clap_error(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut parts = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line);
        }
    }
    let mut msg = String::new();
    for p in parts {
        if !msg.is_empty() {
            msg.push_str(if msg.ends_with(':') { " " } else { "; " });
        }
        msg.push_str(p);
    }
    if !msg.starts_with("error: ") {
        msg = format!("error: {msg}");
    }
    let sub =
        std::env::args_os().nth(1).and_then(|a| a.into_string().ok()).filter(|a| ["weak-error", "long-run", "analyze", "plot", "check"].contains(&a.as_str()));
    let cmd = sub.map_or("gansde".to_string(), |s| format!("gansde {s}"));
    format!("{msg}; see '{cmd} --help'")
}

/// Runs one subcommand; analyze, plot and check work on rank 0 alone.
fn run(command: cli::Command, comm: &dyn Comm) -> anyhow::Result<()> {
    let root = comm.rank() == 0;
    match command {
        cli::Command::WeakError(args) => cmd::weak_error::weak_error(args, comm),
        cli::Command::LongRun(args) => cmd::long_run::long_run(args, comm),
        cli::Command::Analyze(args) => cmd::results::analyze(args, root),
        cli::Command::Plot(args) => cmd::results::plot(args, root),
        cli::Command::Check(args) => cmd::check::check(args, root),
    }
}

/// Writes part of the report to stdout; a reader that went away (broken
/// pipe) is not an error, any other failure is said once on stderr.
fn print_report(args: std::fmt::Arguments) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() != std::io::ErrorKind::BrokenPipe && !WARNED.swap(true, Ordering::Relaxed) {
            eprintln!("warning: cannot write the report to stdout: {e}");
        }
    }
}
