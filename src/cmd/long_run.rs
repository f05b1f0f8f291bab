//! `gansde long-run`: simulate (or resume) the long chains and paths into the
//! sample store, write long_run.h5, analyse it, print the report and draw
//! the plots.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::Context;

use gansde::analysis;
use gansde::cluster::Comm;
use gansde::io::{write_long_run, RunInfo, SampleStore};
use gansde::job;
use gansde::report::{long_run_report, Progress};
use gansde::study::{self, Control, StudyError};

use super::output::{draw_plots, forget_diverged, prepare_output, settle_earlier_run};
use super::stop_on_signals;
use crate::cli::StudyArgs;
use crate::{agree, BadInput};

/// Runs the long-run study of `args.job` on every rank of `comm`.
pub fn long_run(args: StudyArgs, comm: &dyn Comm) -> anyhow::Result<()> {
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
        // A kind's folder that is a file, or a link (which would lead the
        // writers into another folder), is refused before any work.
        if root {
            for kind in study::long_run::all_kind_names() {
                let dir = samples.join(kind);
                if std::fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
                    return Err(BadInput(format!("{} is a file or a link; the sample store needs that name for a folder of its own", dir.display())).into());
                }
            }
        }
        Ok((job, threads, path, lock))
    })();
    let (job, threads, path, _lock) = agree(comm, setup)?;
    let lr = job.long_run.as_ref().expect("checked");
    let store = SampleStore::new(path.with_file_name("samples"), job.fingerprint, lr.records, job.game().dim());
    let leftover = store.exists().then_some(("samples of an earlier run", store.dir()));
    let stop = stop_on_signals()?;
    if settle_earlier_run(comm, &args, &path, &job, leftover, || store.clear())? {
        if root {
            // A run stopped during its analysis left the samples complete but no analysis/.
            let analysed = hdf5::File::open(&path).map(|f| f.link_exists("analysis")).unwrap_or(false);
            if analysed || args.skip_analysis {
                eprintln!("study already complete: {} (nothing to do)", path.display());
            } else {
                eprintln!("samples complete in {}; finishing the analysis", path.display());
                analyse(&path, &store, &stop)?;
                outln!("\nanalysis stored in {} (group analysis/){}", path.display(), draw_plots(&path));
            }
        }
        return Ok(());
    }
    let control = Control { stop: &stop, state: None, resume: args.resume, interval: Duration::MAX };
    let progress = Progress::new(args.quiet || !root);
    let result = study::long_run::long_run(&job, threads, comm, &control, &progress, &store);
    progress.finish();
    forget_diverged(root, &args, &result, || store.clear());
    let Some(summary) = result? else {
        return Ok(());
    };
    write_long_run(&path, &job, &summary, &RunInfo { ranks: comm.size(), threads }).with_context(|| format!("cannot write {}", path.display()))?;
    if args.skip_analysis {
        outln!("analysis skipped; run 'gansde analyze {}' to add it", path.display());
    } else {
        analyse(&path, &store, &stop)?;
    }
    let plots = if args.skip_analysis { String::new() } else { draw_plots(&path) };
    outln!(
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

/// Analyses the study file just written, stores the numbers in it and prints
/// the report. A signal stops it (exit 75) with nothing written: the samples
/// are complete, and `--resume` finishes the analysis.
fn analyse(path: &Path, store: &SampleStore, stop: &AtomicBool) -> anyhow::Result<()> {
    let a = match analysis::analyze_until(path, stop) {
        Err(analysis::AnalysisError::Stopped { .. }) => return Err(StudyError::AnalysisStopped { dir: store.dir().display().to_string() }.into()),
        // A file the analysis cannot read is bad input, as under `gansde analyze`.
        r => r.map_err(|e| BadInput(format!("cannot analyse {}", gansde::data::one_line(&e.to_string()))))?,
    };
    analysis::write_analysis(path, &a).with_context(|| format!("cannot write the analysis into {}", path.display()))?;
    out!("{}", long_run_report(&a));
    Ok(())
}
