//! The output folder of a study: its lock, the checks on what an earlier
//! run left there, and the plots drawn beside the results file.

use std::path::{Path, PathBuf};

use anyhow::Context;

use gansde::cluster::Comm;
use gansde::job;
use gansde::study::{self, StudyError};

use crate::cli;
use crate::{agree, BadInput};

/// Claims the output folder for one run: a lock file naming host and pid,
/// created exclusively, so two runs can never write the same results file.
/// A lock left by a dead process on this host is taken over. Dropping it
/// removes the lock, and the folders this run created if it left them empty.
pub struct OutputLock {
    file: PathBuf,
    /// Folders this run created for the output (the folder first, then its new parents).
    created: Vec<PathBuf>,
}

impl OutputLock {
    /// Takes the lock of `dir` (`created`: the folders this run made, `dir` first). `label`
    /// names the folder in errors (e.g. `--out DIR`); `advice` ends the message
    /// when another live run holds it.
    pub fn acquire(dir: &Path, created: Vec<PathBuf>, label: &str, advice: &str) -> anyhow::Result<Self> {
        let file = dir.join(".gansde.lock");
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        let me = format!("{host} {}", std::process::id());
        // Write the claim under a private name, then link it into place: the
        // lock appears complete or not at all.
        let mine = dir.join(format!(".gansde.lock.{}", std::process::id()));
        std::fs::write(&mine, me.as_bytes()).map_err(|e| BadInput(format!("{label}: cannot write there: {e}")))?;
        for _ in 0..2 {
            match std::fs::hard_link(&mine, &file) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&mine);
                    return Ok(OutputLock { file, created });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&file).unwrap_or_default();
                    let mut parts = owner.split_whitespace();
                    let (h, pid) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                    let dead = h == host && !pid.is_empty() && !Path::new("/proc").join(pid).exists();
                    if dead {
                        let _ = std::fs::remove_file(&file);
                        continue;
                    }
                    let _ = std::fs::remove_file(&mine);
                    if pid.is_empty() {
                        return Err(BadInput(format!(
                            "{} exists but names no gansde run; remove it if no run is writing to {}",
                            file.display(),
                            dir.display()
                        ))
                        .into());
                    }
                    return Err(BadInput(format!(
                        "another gansde run (host {h}, pid {pid}) is writing to {}; {advice} (remove {} if no run is active)",
                        dir.display(),
                        file.display()
                    ))
                    .into());
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&mine);
                    return Err(BadInput(format!("{label}: cannot write there: {e}")).into());
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
        // Only empty folders go (nothing was written), deepest first.
        for dir in &self.created {
            if std::fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Threads, the results file `<out>/<file>` and (on rank 0) the output lock,
/// after checking the folder: an existing results file needs --force or --resume.
pub fn prepare_output(root: bool, args: &cli::StudyArgs, job: &job::Job, file: &str) -> anyhow::Result<(usize, PathBuf, Option<OutputLock>)> {
    if args.force && args.resume {
        return Err(BadInput("--force (start over) and --resume (continue) contradict each other; give one".into()).into());
    }
    let threads = match args.threads {
        Some(0) => return Err(BadInput("--threads: 0 is not allowed; give at least 1".into()).into()),
        Some(n) => n,
        None => super::default_threads(),
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
        // `results/<job>` may create `results/` too: a run that leaves nothing removes both.
        let created: Vec<PathBuf> = out_dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).map(Path::to_path_buf).collect();
        std::fs::create_dir_all(&out_dir).map_err(|e| BadInput(format!("--out {}: cannot create the folder: {e}", out_dir.display())))?;
        lock = Some(OutputLock::acquire(&out_dir, created, &format!("--out {}", out_dir.display()), "wait for it or choose another --out")?);
    }
    Ok((threads, path, lock))
}

/// A results-file argument that is a folder gets a hint instead of an HDF5 error.
pub fn results_file_arg(p: &Path) -> anyhow::Result<()> {
    if p.is_dir() {
        let hint = ["long_run.h5", "weak_error.h5"].iter().map(|f| p.join(f)).find(|f| f.exists());
        let hint = hint.map(|f| format!("; did you mean {}?", f.display())).unwrap_or_default();
        return Err(BadInput(format!("{}: is a folder, not a results file{hint}", p.display())).into());
    }
    Ok(())
}

/// The lock of the folder holding a finished results file, for a command
/// that writes there (`analyze`, `plot`): a study running into that folder
/// may be replacing the file.
pub fn lock_results_folder(results: &Path) -> anyhow::Result<OutputLock> {
    let dir = results_folder(results);
    OutputLock::acquire(&dir, Vec::new(), &dir.display().to_string(), "wait for it to finish")
}

/// The folder that really holds `results` (an existing file; links resolved).
pub fn results_folder(results: &Path) -> PathBuf {
    let real = std::fs::canonicalize(results).unwrap_or_else(|_| results.to_path_buf());
    match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `dir` (existing or not) lies in the folder `inside` (an existing folder), links resolved.
pub fn lies_in(dir: &Path, inside: &Path) -> bool {
    let inside = std::fs::canonicalize(inside).unwrap_or_else(|_| inside.to_path_buf());
    // The nearest existing ancestor decides where a folder yet to be created will be.
    let mut probe = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    loop {
        if let Ok(real) = std::fs::canonicalize(&probe) {
            return real.starts_with(&inside);
        }
        if !probe.pop() {
            return false;
        }
    }
}

/// Plots go to `plots/` beside the results file.
pub fn plots_dir(results: &Path) -> PathBuf {
    results.parent().unwrap_or(Path::new(".")).join("plots")
}

/// Draws the study's plots; a failure here is reported but does not fail the finished study.
pub fn draw_plots(results: &Path) -> String {
    let dir = plots_dir(results);
    match gansde::report::plot::plot_study(results, &dir) {
        Ok(files) => format!("; plots: {} files in {}", files.len(), dir.display()),
        Err(e) => {
            eprintln!("warning: no plots: {}", gansde::data::one_line(&e.to_string()));
            String::new()
        }
    }
}

/// Whether a finished study file at `path` (re-submitted with --resume) belongs to this job.
pub fn finished_study(path: &Path, job: &job::Job) -> anyhow::Result<()> {
    let f = hdf5::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let fp: u64 = f.attr("fingerprint").and_then(|a| a.read_scalar()).unwrap_or(0);
    if fp != job.fingerprint {
        return Err(BadInput(format!("results file {} is from another study; --resume will not touch it (use another --out)", path.display())).into());
    }
    Ok(())
}

/// What an earlier run left in the output folder, settled on every rank
/// alike. Under `--resume` a complete results file must belong to this job,
/// and then the study is finished (returns true: nothing to do). Without
/// `--resume`, saved progress (`leftover`, a description such as "saved
/// state of an interrupted run") needs `--force`, which removes it together
/// with the earlier results file: a `--force` run that is interrupted must
/// leave only its own progress, which `--resume` then continues.
pub fn settle_earlier_run(
    comm: &dyn Comm,
    args: &cli::StudyArgs,
    path: &Path,
    job: &job::Job,
    leftover: Option<(&str, &Path)>,
    clear: impl FnOnce() -> std::io::Result<()>,
) -> anyhow::Result<bool> {
    let root = comm.rank() == 0;
    let finished = root && args.resume && path.exists();
    let check = (|| -> anyhow::Result<()> {
        if finished {
            finished_study(path, job)?;
        } else if root && !args.resume {
            match leftover {
                Some((_, dir)) if args.force => clear().with_context(|| format!("cannot remove {}", dir.display()))?,
                Some((what, dir)) => {
                    return Err(BadInput(format!("{} holds {what}; pass --resume to continue it or --force to start over", dir.display())).into())
                }
                None => {}
            }
            if args.force && path.exists() {
                std::fs::remove_file(path).with_context(|| format!("cannot remove {} (--force)", path.display()))?;
                // Its plots would stand beside a study that is not there.
                let study = if job.long_run.is_some() { "long-run" } else { "weak-error" };
                let plots = plots_dir(path);
                gansde::report::plot::remove_plots(&plots, study)
                    .with_context(|| format!("cannot remove the earlier plots in {} (--force)", plots.display()))?;
            }
        }
        Ok(())
    })();
    agree(comm, check)?;
    Ok(comm.max(finished as u64) == 1)
}

/// A study that diverged leaves nothing behind: `clear` removes the progress
/// this run saved (rank 0, and not under `--resume`, whose earlier progress stays).
pub fn forget_diverged<T>(root: bool, args: &cli::StudyArgs, result: &Result<T, StudyError>, clear: impl FnOnce() -> std::io::Result<()>) {
    if let Err(e) = result {
        if root && !args.resume && e.exit_code() == study::EXIT_DIVERGED {
            let _ = clear();
        }
    }
}
