//! `gansde check`: validate a job and estimate its cost on a layout, without running it.

use gansde::job;
use gansde::study;

use super::default_threads;
use crate::cli::CheckArgs;
use crate::BadInput;

/// Prints what the job would cost on `--ranks` × `--threads` (rank 0 only).
pub fn check(args: CheckArgs, root: bool) -> anyhow::Result<()> {
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
    // The pilot runs real chains: on a large game it takes minutes, so say what is happening.
    let unit = if job.long_run.is_some() { "whole path(s) (to T) per ensemble" } else { "chains per (scheme, η, SGA/SDE)" };
    eprintln!("check: timing a pilot of {} {unit} on this machine (--pilot N to change) ...", args.pilot);
    if let Some(lr) = &job.long_run {
        let e = study::long_run::estimate_long_run(&job, args.ranks, threads, args.pilot)?;
        outln!("job {}: valid (long-run)", args.job.display());
        outln!(
            "  schemes {}, η = {}, {} records per path, SGA chains {} per scheme, SDE paths {} per scheme",
            job.schemes.len(),
            lr.eta,
            lr.records,
            lr.chains,
            lr.sde_paths
        );
        outln!("  chain-steps      {:.3e} (η-steps of all chains and paths)", e.chain_steps as f64);
        outln!(
            "  samples          {:.3e} scalars, {:.1} MiB before compression, in {} block files",
            e.stored_scalars as f64,
            e.sample_bytes as f64 / 1048576.0,
            e.block_files
        );
        // The analysis holds one kind's coordinates and projections with pair
        // buffers, and the stationary records of one SDE kind (for W1 against its SGA kind).
        let dim = job.game().dim() as u64;
        let one_kind = lr.chains.max(lr.sde_paths) * lr.records as u64 * (dim + lr.projections.len() as u64 + 24);
        let partner = lr.sde_paths * (lr.records - lr.first_stationary()) as u64 * dim;
        let analysis = 40.0 * 1048576.0 + (8 * (one_kind + partner)) as f64;
        outln!("  memory per rank  flat while writing (about 25 MiB); the analysis on rank 0 needs up to about {:.0} MiB", analysis / 1048576.0);
        outln!(
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
    outln!("job {}: valid", args.job.display());
    outln!("  schemes {}, η values {}, record times {}, test functions {}", job.schemes.len(), job.etas.len(), job.record_times.len(), job.functions.len());
    outln!("  chain-steps      {:.3e}{}", e.chain_steps as f64, if job.target.is_some() { " (first round; a precision target adds rounds)" } else { "" });
    outln!("  blocks           {} of {} chains", e.blocks, job.block);
    outln!("  memory per rank  {:.1} MiB (estimate)", e.memory_per_rank as f64 / 1048576.0);
    outln!("  results file     {:.1} KiB (estimate)", e.output_bytes as f64 / 1024.0);
    outln!(
        "  wall time        {} on {} rank(s) x {} thread(s), one core each, from a {:.1} s pilot of {} chains on this machine",
        human_seconds(e.wall_seconds),
        args.ranks,
        threads,
        e.pilot_seconds,
        e.pilot_chains
    );
    Ok(())
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
