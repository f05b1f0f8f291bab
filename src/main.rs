//! `gansde`: parse → resolve config → run → render. Only this file turns
//! errors into messages and exit codes.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use gansde::analysis;
use gansde::cluster::{self, Comm};
use gansde::io::{write_long_run, write_weak_error, RunInfo, SampleStore, StateStore};
use gansde::job::{self, JobError};
use gansde::report::{long_run_report, weak_error_table, Progress};
use gansde::study::{self, Control, StudyError};

/// Exit code: done.
const EXIT_OK: u8 = 0;
/// Exit code: failed (I/O or internal).
const EXIT_FAILED: u8 = 1;
/// Exit code: bad input.
const EXIT_BAD_INPUT: u8 = 2;
/// Seconds between state saves unless --checkpoint-every says otherwise.
const DEFAULT_CHECKPOINT_SECS: u64 = 300;

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
    let outcome = run(cli, comm.as_ref());
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

/// Claims the output folder for one run: a lock file naming host and pid,
/// created exclusively, so two runs can never write the same results file.
/// A lock left by a dead process on this host is taken over. Dropping it
/// removes the lock, and the folder too if this run created it and left it empty.
struct OutputLock {
    file: PathBuf,
    dir: PathBuf,
    created: bool,
}

impl OutputLock {
    fn acquire(dir: &std::path::Path, created: bool) -> anyhow::Result<Self> {
        let file = dir.join(".gansde.lock");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let me = format!("{host} {}", std::process::id());
        // Write the claim under a private name, then link it into place: the
        // lock appears complete or not at all.
        let mine = dir.join(format!(".gansde.lock.{}", std::process::id()));
        std::fs::write(&mine, me.as_bytes()).map_err(|e| BadInput(format!("--out {}: cannot write there: {e}", dir.display())))?;
        for _ in 0..2 {
            match std::fs::hard_link(&mine, &file) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&mine);
                    return Ok(OutputLock { file, dir: dir.to_path_buf(), created });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&file).unwrap_or_default();
                    let mut parts = owner.split_whitespace();
                    let (h, pid) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let dead = h == host && !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists();
                    if dead {
                        let _ = std::fs::remove_file(&file);
                        continue;
                    }
                    let _ = std::fs::remove_file(&mine);
                    return Err(BadInput(format!(
                        "another gansde run (host {h}, pid {pid}) is writing to {}; wait for it or choose another --out (remove {} if no run is active)",
                        dir.display(),
                        file.display()
                    ))
                    .into());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&mine);
                    return Err(BadInput(format!("--out {}: cannot write there: {e}", dir.display())).into());
                }
            }
        }
        let _ = std::fs::remove_file(&mine);
        Err(BadInput(format!("cannot take the lock {}", file.display())).into())
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        if self.created {
            // Only removes an empty folder: nothing was written.
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}

/// "2 h 05 min", "3 min 10 s", "42 s".
fn human_seconds(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Threads this process may use: SLURM_CPUS_PER_TASK when set, else the
/// CPUs in our affinity mask / cgroup quota.
fn default_threads() -> usize {
    let avail = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var("SLURM_CPUS_PER_TASK").ok().and_then(|v| v.parse::<usize>().ok()) {
        Some(n) if n > 0 => n,
        _ => avail,
    }
}

/// A flag raised by SIGTERM, SIGUSR1 or SIGINT; a second signal ends the process at once.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGUSR1, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop)).context("cannot install signal handlers")?;
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot install signal handlers")?;
    }
    Ok(stop)
}

/// Threads, the results file `<out>/<file>` and (on rank 0) the output lock,
/// after checking the folder: an existing results file needs --force or --resume.
fn prepare_output(root: bool, args: &cli::WeakErrorArgs, job: &job::Job, file: &str) -> anyhow::Result<(usize, PathBuf, Option<OutputLock>)> {
    if args.force && args.resume {
        return Err(BadInput("--force (start over) and --resume (continue) contradict each other; give one".into()).into());
    }
    let threads = match args.threads {
        Some(0) => return Err(BadInput("--threads: 0 is not allowed; give at least 1".into()).into()),
        Some(n) => n,
        None => default_threads(),
    };
    let out_dir = args.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&job.name));
    let path = out_dir.join(file);
    let avail = std::thread::available_parallelism().map_or(1, |n| n.get());
    if root && threads > avail {
        eprintln!("warning: {threads} threads on a process that may use {avail} CPUs; they will share cores");
    }
    // Only rank 0 writes the study file, so only rank 0 looks at the output folder.
    let mut lock = None;
    if root {
        if out_dir.exists() && !out_dir.is_dir() {
            return Err(BadInput(format!("--out {}: is a file, not a folder", out_dir.display())).into());
        }
        if path.is_dir() {
            return Err(BadInput(format!("{} is a folder; the results file needs that name", path.display())).into());
        }
        if path.exists() && !args.force && !args.resume {
            return Err(BadInput(format!("results file {} exists; pass --force to replace it or --out to write elsewhere", path.display())).into());
        }
        let created = !out_dir.exists();
        std::fs::create_dir_all(&out_dir).map_err(|e| BadInput(format!("--out {}: cannot create the folder: {e}", out_dir.display())))?;
        lock = Some(OutputLock::acquire(&out_dir, created)?);
    }
    Ok((threads, path, lock))
}

/// A results-file argument that is a folder gets a hint instead of an HDF5 error.
fn results_file_arg(p: &std::path::Path) -> anyhow::Result<()> {
    if p.is_dir() {
        let hint = ["long_run.h5", "weak_error.h5"].iter().map(|f| p.join(f)).find(|f| f.exists());
        let hint = hint.map(|f| format!("; did you mean {}?", f.display())).unwrap_or_default();
        return Err(BadInput(format!("{}: is a folder, not a results file{hint}", p.display())).into());
    }
    Ok(())
}

/// Plots go to `plots/` beside the results file.
fn plots_dir(results: &std::path::Path) -> PathBuf {
    results.parent().unwrap_or(std::path::Path::new(".")).join("plots")
}

/// Draws the study's plots; a failure here is reported but does not fail the finished study.
fn draw_plots(results: &std::path::Path) -> String {
    let dir = plots_dir(results);
    // Plots of an earlier study in this folder (e.g. before --force) must not linger beside the new ones.
    if dir.is_dir() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match gansde::report::plot::plot_study(results, &dir) {
        Ok(files) => format!("; plots: {} files in {}", files.len(), dir.display()),
        Err(e) => {
            eprintln!("warning: no plots: {}", gansde::data::one_line(&e.to_string()));
            String::new()
        }
    }
}

/// Whether a finished study file at `path` (re-submitted with --resume) belongs to this job.
fn finished_study(path: &std::path::Path, job: &job::Job) -> anyhow::Result<()> {
    let f = hdf5::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let fp: u64 = f.attr("fingerprint").and_then(|a| a.read_scalar()).unwrap_or(0);
    if fp != job.fingerprint {
        return Err(BadInput(format!("results file {} is from another study; --resume will not touch it (use another --out)", path.display())).into());
    }
    Ok(())
}

fn run(cli: cli::Cli, comm: &dyn Comm) -> anyhow::Result<()> {
    let root = comm.rank() == 0;
    match cli.command {
        cli::Command::LongRun(args) => long_run(args, comm),
        cli::Command::Analyze(args) => {
            if !root {
                return Ok(());
            }
            results_file_arg(&args.results)?;
            let a = analysis::analyze(&args.results).map_err(|e| BadInput(gansde::data::one_line(&e.to_string())))?;
            analysis::write_analysis(&args.results, &a).with_context(|| format!("cannot write the analysis into {}", args.results.display()))?;
            print!("{}", long_run_report(&a));
            println!("\nanalysis stored in {} (group analysis/){}", args.results.display(), draw_plots(&args.results));
            Ok(())
        }
        cli::Command::Plot(args) => {
            if !root {
                return Ok(());
            }
            results_file_arg(&args.results)?;
            let dir = args.out.clone().unwrap_or_else(|| plots_dir(&args.results));
            if dir.exists() && !dir.is_dir() {
                return Err(BadInput(format!("--out {}: is a file, not a folder", dir.display())).into());
            }
            let files = gansde::report::plot::plot_study(&args.results, &dir).map_err(|e| BadInput(gansde::data::one_line(&e.to_string())))?;
            println!("{} plots in {}", files.len(), dir.display());
            Ok(())
        }
        cli::Command::Check(args) => {
            if !root {
                return Ok(());
            }
            let job = job::load(&args.job, &args.set)?;
            if args.ranks == 0 || args.threads == Some(0) || args.pilot == 0 {
                return Err(BadInput("--ranks, --threads and --pilot must be at least 1".into()).into());
            }
            let threads = args.threads.unwrap_or_else(default_threads);
            for w in &job.warnings {
                eprintln!("warning: {w}");
            }
            if let Some(lr) = &job.long_run {
                let e = study::long_run::estimate_long_run(&job, args.ranks, threads, args.pilot)?;
                println!("job {}: valid (long-run)", args.job.display());
                println!(
                    "  schemes {}, η = {}, {} records per path, SGA chains {} per scheme, SDE paths {} per scheme",
                    job.schemes.len(),
                    lr.eta,
                    lr.records,
                    lr.chains,
                    lr.sde_paths
                );
                println!("  chain-steps      {:.3e} (η-steps of all chains and paths)", e.chain_steps as f64);
                println!(
                    "  samples          {:.3e} scalars, {:.1} MiB before compression, in {} block files",
                    e.stored_scalars as f64,
                    e.sample_bytes as f64 / 1048576.0,
                    e.block_files
                );
                let kinds = study::long_run::LongRunPlan::new(&job, job.game().as_ref()).kinds.len() as u64;
                // The analysis holds every kind's stationary samples (W1 between kinds, shared
                // histogram edges) plus one kind's coordinates, projections and pair buffers.
                let per = job.game().dim() as u64 * (kinds + 1) + lr.projections.len() as u64 + 24;
                let analysis = 20.0 * 1048576.0 + (8 * lr.chains.max(lr.sde_paths) * lr.records as u64 * per) as f64;
                println!("  memory per rank  flat while writing (about 25 MiB); the analysis on rank 0 needs up to about {:.0} MiB", analysis / 1048576.0);
                println!(
                    "  wall time        {} on {} rank(s) x {} thread(s), one core each (simulation; the analysis comes on top), from a {:.1} s pilot of {} paths per ensemble on this machine",
                    human_seconds(e.wall_seconds),
                    args.ranks,
                    threads,
                    e.pilot_seconds,
                    e.pilot_paths
                );
                return Ok(());
            }
            let e = study::estimate(&job, args.ranks, threads, args.pilot)?;
            println!("job {}: valid", args.job.display());
            println!(
                "  schemes {}, η values {}, record times {}, test functions {}",
                job.schemes.len(),
                job.etas.len(),
                job.record_times.len(),
                job.functions.len()
            );
            println!(
                "  chain-steps      {:.3e}{}",
                e.chain_steps as f64,
                if job.target.is_some() { " (first round; a precision target adds rounds)" } else { "" }
            );
            println!("  blocks           {} of {} chains", e.blocks, job.block);
            println!("  memory per rank  {:.1} MiB (estimate)", e.memory_per_rank as f64 / 1048576.0);
            println!("  results file     {:.1} KiB (estimate)", e.output_bytes as f64 / 1024.0);
            println!(
                "  wall time        {} on {} rank(s) x {} thread(s), one core each, from a {:.1} s pilot of {} chains on this machine",
                human_seconds(e.wall_seconds),
                args.ranks,
                threads,
                e.pilot_seconds,
                e.pilot_chains
            );
            Ok(())
        }
        cli::Command::WeakError(args) => {
            let setup = (|| -> anyhow::Result<_> {
                let job = job::load(&args.job, &args.set)?;
                if !job.has_estimate {
                    return Err(BadInput(format!(
                        "{}: has no [estimate] table, so it is not a weak-error job (a [long_run] job runs with 'gansde long-run')",
                        args.job.display()
                    ))
                    .into());
                }
                if args.skip_analysis {
                    return Err(BadInput("--skip-analysis: only used by long-run".into()).into());
                }
                let (threads, path, lock) = prepare_output(root, &args, &job, "weak_error.h5")?;
                Ok((job, threads, path, lock))
            })();
            let (job, threads, path, _lock) = agree(comm, setup)?;
            let store = StateStore::new(path.with_file_name("state"), job.fingerprint);
            // A finished study re-submitted (e.g. by a requeued batch job) does no work.
            let finished = root && args.resume && path.exists();
            let check = (|| -> anyhow::Result<()> {
                if finished {
                    finished_study(&path, &job)?;
                } else if root && store.exists() && !args.resume {
                    if args.force {
                        store.clear().with_context(|| format!("cannot remove {}", store.dir().display()))?;
                    } else {
                        return Err(BadInput(format!(
                            "{} holds saved state of an interrupted run; pass --resume to continue it or --force to start over",
                            store.dir().display()
                        ))
                        .into());
                    }
                }
                Ok(())
            })();
            agree(comm, check)?;
            if comm.max(finished as u64) == 1 {
                if root {
                    eprintln!("study already complete: {} (nothing to do)", path.display());
                }
                return Ok(());
            }
            let stop = stop_on_signals()?;
            let control = Control {
                stop: &stop,
                state: Some(&store),
                resume: args.resume,
                interval: Duration::from_secs(args.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_SECS)),
            };
            let progress = Progress::new(args.quiet || !root);
            let result = study::weak_error(&job, threads, comm, &control, &progress);
            progress.finish();
            if let Err(e) = &result {
                // A diverged study leaves nothing behind (state from an earlier, resumed run stays).
                if root && !args.resume && e.exit_code() == study::EXIT_DIVERGED {
                    let _ = store.clear();
                }
            }
            let Some(result) = result? else {
                return Ok(());
            };
            write_weak_error(&path, &job, &result, &RunInfo { ranks: comm.size(), threads }).with_context(|| format!("cannot write {}", path.display()))?;
            store.clear().with_context(|| format!("results written, but cannot remove {}", store.dir().display()))?;
            print!("{}", weak_error_table(&job, &result));
            let resumed = if result.chain_steps_run < result.chain_steps {
                format!(" ({} computed now, the rest resumed from saved state)", result.chain_steps_run)
            } else {
                String::new()
            };
            println!(
                "\n{} chain-steps{resumed} in {:.1} s on {} rank(s) x {} thread(s); results: {}{}",
                result.chain_steps,
                result.elapsed.as_secs_f64(),
                comm.size(),
                threads,
                path.display(),
                draw_plots(&path)
            );
            Ok(())
        }
    }
}

/// `gansde long-run`: simulate (or resume), write the study file, analyse, report.
fn long_run(args: cli::WeakErrorArgs, comm: &dyn Comm) -> anyhow::Result<()> {
    let root = comm.rank() == 0;
    let setup = (|| -> anyhow::Result<_> {
        let job = job::load(&args.job, &args.set)?;
        if job.long_run.is_none() {
            return Err(BadInput(format!(
                "{}: has no [long_run] table, so it is not a long-run job (an [estimate] job runs with 'gansde weak-error')",
                args.job.display()
            ))
            .into());
        }
        if args.checkpoint_every.is_some() {
            return Err(BadInput("--checkpoint-every: not used by long-run, which writes every block as soon as it is complete".into()).into());
        }
        let (threads, path, lock) = prepare_output(root, &args, &job, "long_run.h5")?;
        let samples = path.with_file_name("samples");
        if root && samples.exists() && !samples.is_dir() {
            return Err(BadInput(format!("{} is a file; the sample store needs that name for a folder", samples.display())).into());
        }
        Ok((job, threads, path, lock))
    })();
    let (job, threads, path, _lock) = agree(comm, setup)?;
    let lr = job.long_run.as_ref().expect("checked");
    let store = SampleStore::new(path.with_file_name("samples"), job.fingerprint, lr.records, job.game().dim());
    let finished = root && args.resume && path.exists();
    let check = (|| -> anyhow::Result<()> {
        if finished {
            finished_study(&path, &job)?;
        } else if root && store.exists() && !args.resume {
            if args.force {
                store.clear().with_context(|| format!("cannot remove {}", store.dir().display()))?;
            } else {
                return Err(BadInput(format!(
                    "{} holds samples of an earlier run; pass --resume to continue it or --force to start over",
                    store.dir().display()
                ))
                .into());
            }
        }
        Ok(())
    })();
    agree(comm, check)?;
    if comm.max(finished as u64) == 1 {
        if root {
            // A run stopped during its analysis left the samples complete but no analysis/.
            let analysed = hdf5::File::open(&path).map(|f| f.link_exists("analysis")).unwrap_or(false);
            if analysed || args.skip_analysis {
                eprintln!("study already complete: {} (nothing to do)", path.display());
            } else {
                eprintln!("samples complete in {}; finishing the analysis", path.display());
                let a = analysis::analyze(&path).with_context(|| format!("cannot analyse {}", path.display()))?;
                analysis::write_analysis(&path, &a).with_context(|| format!("cannot write the analysis into {}", path.display()))?;
                print!("{}", long_run_report(&a));
                println!("\nanalysis stored in {} (group analysis/){}", path.display(), draw_plots(&path));
            }
        }
        return Ok(());
    }
    let stop = stop_on_signals()?;
    let control = Control { stop: &stop, state: None, resume: args.resume, interval: Duration::MAX };
    let progress = Progress::new(args.quiet || !root);
    let result = study::long_run::long_run(&job, threads, comm, &control, &progress, &store);
    progress.finish();
    if let Err(e) = &result {
        if root && !args.resume && e.exit_code() == study::EXIT_DIVERGED {
            let _ = store.clear();
        }
    }
    let Some(summary) = result? else {
        return Ok(());
    };
    write_long_run(&path, &job, &summary, &RunInfo { ranks: comm.size(), threads }).with_context(|| format!("cannot write {}", path.display()))?;
    if args.skip_analysis {
        println!("analysis skipped; run 'gansde analyze {}' to add it", path.display());
    } else {
        let a = analysis::analyze(&path).with_context(|| format!("cannot analyse {}", path.display()))?;
        analysis::write_analysis(&path, &a).with_context(|| format!("cannot write the analysis into {}", path.display()))?;
        print!("{}", long_run_report(&a));
    }
    let plots = if args.skip_analysis { String::new() } else { draw_plots(&path) };
    println!(
        "\n{} chain-steps computed now in {:.1} s on {} rank(s) x {} thread(s); results: {} (samples in {}){plots}",
        summary.chain_steps_run,
        summary.elapsed.as_secs_f64(),
        comm.size(),
        threads,
        path.display(),
        store.dir().display()
    );
    Ok(())
}
