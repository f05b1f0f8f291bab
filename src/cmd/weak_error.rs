//! `gansde weak-error`: simulate (or resume) the study, write weak_error.h5,
//! print the tables and draw the plots.

use std::time::Duration;

use anyhow::Context;

use gansde::cluster::Comm;
use gansde::io::{write_weak_error, RunInfo, StateStore};
use gansde::job;
use gansde::report::{weak_error_table, Progress};
use gansde::study::{self, Control};

use super::output::{draw_plots, forget_diverged, prepare_output, settle_earlier_run};
use super::stop_on_signals;
use crate::cli::StudyArgs;
use crate::{agree, BadInput};

/// Seconds between state saves unless --checkpoint-every says otherwise.
const DEFAULT_CHECKPOINT_SECS: u64 = 300;

/// Runs the weak-error study of `args.job` on every rank of `comm`.
pub fn weak_error(args: StudyArgs, comm: &dyn Comm) -> anyhow::Result<()> {
    let root = comm.rank() == 0;
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
    let leftover = store.exists().then_some(("saved state of an interrupted run", store.dir()));
    if settle_earlier_run(comm, &args, &path, &job, leftover, || store.clear())? {
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
    forget_diverged(root, &args, &result, || store.clear());
    let Some(result) = result? else {
        return Ok(());
    };
    write_weak_error(&path, &job, &result, &RunInfo { ranks: comm.size(), threads }).with_context(|| format!("cannot write {}", path.display()))?;
    store.clear().with_context(|| format!("results written, but cannot remove {}", store.dir().display()))?;
    out!("{}", weak_error_table(&job, &result));
    let resumed = if result.chain_steps_run < result.chain_steps {
        format!(" ({} computed now, the rest resumed from saved state)", result.chain_steps_run)
    } else {
        String::new()
    };
    outln!(
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
