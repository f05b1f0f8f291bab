//! `gansde analyze` and `gansde plot`: work on a finished results file (rank 0 only).

use anyhow::Context;

use gansde::analysis;
use gansde::report::long_run_report;

use super::output::{draw_plots, lies_in, lock_results_folder, plots_dir, results_file_arg, results_folder};
use crate::cli::{AnalyzeArgs, PlotArgs};
use crate::BadInput;

/// Analyses a long_run.h5 (again), stores the numbers in it, prints the report, redraws the plots.
pub fn analyze(args: AnalyzeArgs, root: bool) -> anyhow::Result<()> {
    if !root {
        return Ok(());
    }
    results_file_arg(&args.results)?;
    // A missing file is reported by the analysis; an existing one is not
    // analysed while a study writes into its folder.
    let _lock = if args.results.exists() { Some(lock_results_folder(&args.results)?) } else { None };
    let a = analysis::analyze(&args.results).map_err(|e| BadInput(gansde::data::one_line(&e.to_string())))?;
    analysis::write_analysis(&args.results, &a).with_context(|| format!("cannot write the analysis into {}", args.results.display()))?;
    out!("{}", long_run_report(&a));
    outln!("\nanalysis stored in {} (group analysis/){}", args.results.display(), draw_plots(&args.results));
    Ok(())
}

/// Draws the plots of a weak_error.h5 or long_run.h5 into `--out` (default: plots/ beside it).
pub fn plot(args: PlotArgs, root: bool) -> anyhow::Result<()> {
    if !root {
        return Ok(());
    }
    results_file_arg(&args.results)?;
    let dir = args.out.clone().unwrap_or_else(|| plots_dir(&args.results));
    if dir.exists() && !dir.is_dir() {
        let what = if args.out.is_some() { "--out" } else { "the plots folder" };
        return Err(BadInput(format!("{what} {}: is a file, not a folder", dir.display())).into());
    }
    // Plots in the study folder (plots/ beside the results, or any folder in
    // it) wait for a study writing there; elsewhere (a read-only results
    // folder, say) nothing in the study folder is written.
    let in_study = args.results.exists() && (args.out.is_none() || lies_in(&dir, &results_folder(&args.results)));
    let _lock = if in_study { Some(lock_results_folder(&args.results)?) } else { None };
    let files = gansde::report::plot::plot_study(&args.results, &dir).map_err(|e| {
        let message = gansde::data::one_line(&e.to_string());
        // A folder given by --out that cannot be made is a bad flag, as for the studies' --out.
        let bad_out = args.out.is_some() && matches!(e, gansde::report::plot::PlotError::Dir { .. });
        if e.is_bad_input() || bad_out {
            anyhow::Error::from(BadInput(message))
        } else {
            anyhow::anyhow!(message)
        }
    })?;
    outln!("{} plots in {}", files.len(), dir.display());
    Ok(())
}
