//! The weak-error results file. Layout (all readable with h5py):
//!
//! - root attributes: `study`, `job` (the job text), `crate_version`,
//!   `git_commit`, `rng_scheme`, `block_size`, `seed`, `fingerprint`, `ranks`, `threads`,
//!   `created_utc`, `elapsed_seconds`, `state_save_seconds`, `reduce_seconds`,
//!   `chain_steps` (timings live only here);
//! - `data/latent` [N, d_z] and `data/real` [M, d_x]: the samples the game used;
//! - `weak_error/eta` [n_eta], `weak_error/record_time` [n_rec],
//!   `weak_error/test_function` [n_f] (names);
//! - `weak_error/<scheme>/` with attributes `drift`, `noise`, `integrator`,
//!   `batch`, `paper_order`, `confidence`, `z`, and datasets of
//!   shape [n_eta, n_rec, n_f]: sufficient statistics `sga_count`,
//!   `sga_mean`, `sga_m2`, `sde_count`, `sde_mean`, `sde_m2`, `bias_count`,
//!   `bias_mean`, `bias_m2`, and the derived `weak_error`, `standard_error`,
//!   `bias_estimate`, `resolved` (0/1); `diverged_sga`, `diverged_sde` [n_eta];
//!   `substeps` [n_eta] (m per η); `order`, `order_half_width` [n_rec, n_f] (NaN where fewer than two
//!   resolved points) and `order_points`.

use std::path::Path;

use hdf5::types::VarLenUnicode;

use crate::job::Job;
use crate::study::WeakErrorResult;

/// Facts about the run stored beside the numbers.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub ranks: usize,
    pub threads: usize,
}

pub(crate) fn vstr(s: &str) -> VarLenUnicode {
    s.parse().expect("a string without interior NUL")
}

pub(crate) fn attr_str(loc: &hdf5::Location, name: &str, value: &str) -> hdf5::Result<()> {
    loc.new_attr::<VarLenUnicode>().create(name)?.write_scalar(&vstr(value))
}

pub(crate) fn attr_f64(loc: &hdf5::Location, name: &str, value: f64) -> hdf5::Result<()> {
    loc.new_attr::<f64>().create(name)?.write_scalar(&value)
}

pub(crate) fn attr_u64(loc: &hdf5::Location, name: &str, value: u64) -> hdf5::Result<()> {
    loc.new_attr::<u64>().create(name)?.write_scalar(&value)
}

pub(crate) fn dataset<T: hdf5::H5Type + Copy>(g: &hdf5::Group, name: &str, shape: &[usize], data: &[T], units: &str) -> hdf5::Result<()> {
    let ds = g.new_dataset::<T>().shape(shape.to_vec()).create(name)?;
    ds.write_raw(data)?;
    attr_str(&ds, "units", units)
}

/// Writes the study's results to `path` (via `path`.partial, renamed at the end).
pub fn write_weak_error(path: &Path, job: &Job, res: &WeakErrorResult, info: &RunInfo) -> hdf5::Result<()> {
    let tmp = path.with_extension("h5.partial");
    let _ = std::fs::remove_file(&tmp);
    {
        let f = hdf5::File::create(&tmp)?;
        attr_str(&f, "study", "weak-error")?;
        attr_str(&f, "job", &job.text)?;
        attr_str(&f, "crate_version", env!("CARGO_PKG_VERSION"))?;
        attr_str(&f, "git_commit", env!("GANSDE_GIT_COMMIT"))?;
        attr_str(&f, "rng_scheme", crate::rng::RNG_SCHEME)?;
        attr_u64(&f, "block_size", job.block)?;
        attr_u64(&f, "seed", job.seed)?;
        attr_u64(&f, "fingerprint", job.fingerprint)?;
        attr_u64(&f, "ranks", info.ranks as u64)?;
        attr_u64(&f, "threads", info.threads as u64)?;
        attr_str(&f, "created_utc", &utc_now())?;
        attr_f64(&f, "elapsed_seconds", res.elapsed.as_secs_f64())?;
        attr_u64(&f, "chain_steps", res.chain_steps)?;
        attr_f64(&f, "state_save_seconds", res.save_time.as_secs_f64())?;
        attr_f64(&f, "reduce_seconds", res.reduce_time.as_secs_f64())?;

        let data = f.create_group("data")?;
        dataset(&data, "latent", &[job.latent.n, job.latent.dim], &job.latent.data, "latent samples z_i, one per row")?;
        dataset(&data, "real", &[job.real.n, job.real.dim], &job.real.data, "real samples x_j, one per row (after standardisation if asked)")?;

        let we = f.create_group("weak_error")?;
        dataset(&we, "eta", &[job.etas.len()], &job.etas, "learning rate η")?;
        dataset(&we, "record_time", &[job.record_times.len()], &job.record_times, "SDE time t = step·η")?;
        let names: Vec<VarLenUnicode> = job.function_names.iter().map(|s| vstr(s)).collect();
        let ds = we.new_dataset::<VarLenUnicode>().shape([names.len()]).create("test_function")?;
        ds.write_raw(&names)?;
        attr_str(&ds, "units", "test function names (thetaK, omegaK, uK 1-based; norm2; a*b; loss)")?;
        attr_u64(&we, "rounds", res.rounds as u64)?;
        match job.target {
            Some(crate::job::Target::StdError(x)) => attr_f64(&we, "target_se", x)?,
            Some(crate::job::Target::RelativeCi(r)) => attr_f64(&we, "target_rel_ci", r)?,
            None => {}
        }
        if job.target.is_some() {
            attr_u64(&we, "max_paths", job.max_paths)?;
        }

        let (ne, nr, nf) = (job.etas.len(), job.record_times.len(), job.functions.len());
        let shape = [ne, nr, nf];
        for s in &res.schemes {
            let g = we.create_group(s.scheme.name())?;
            attr_str(&g, "drift", s.drift.name())?;
            attr_str(&g, "noise", s.noise.name())?;
            attr_str(&g, "integrator", job.sde.integrator.name())?;
            let exact = job.sde.integrator == crate::job::Integrator::Exact;
            let m: Vec<u64> = job.etas.iter().map(|&e| if exact { 0 } else { job.sde.substeps_for(e) as u64 }).collect();
            dataset(
                &g,
                "substeps",
                &[ne],
                &m,
                "m: coarse substeps per η (the SDE estimator uses m and 2m, and 4m for Richardson); 0 for the exact integrator",
            )?;
            if let Some(met) = &s.target_met {
                let met: Vec<u8> = met.iter().map(|&b| b as u8).collect();
                dataset(&g, "target_met", &[ne], &met, "1 where every weak error of that η met the precision target")?;
            }
            attr_u64(&g, "batch", job.batch as u64)?;
            attr_f64(&g, "paper_order", s.paper_order)?;
            attr_f64(&g, "confidence", job.confidence)?;
            attr_f64(&g, "z", res.z)?;
            let cells: Vec<_> = s.cells.iter().flatten().flatten().collect();
            let f64s = |get: &dyn Fn(&crate::study::Cell) -> f64| cells.iter().map(|c| get(c)).collect::<Vec<f64>>();
            let u64s = |get: &dyn Fn(&crate::study::Cell) -> u64| cells.iter().map(|c| get(c)).collect::<Vec<u64>>();
            dataset(&g, "sga_count", &shape, &u64s(&|c| c.sga.count), "chains")?;
            dataset(&g, "sga_mean", &shape, &f64s(&|c| c.sga.mean), "mean of f over SGA chains")?;
            dataset(&g, "sga_m2", &shape, &f64s(&|c| c.sga.m2), "sum of squared deviations of f over SGA chains")?;
            dataset(&g, "sde_count", &shape, &u64s(&|c| c.sde.count), "paths")?;
            dataset(&g, "sde_mean", &shape, &f64s(&|c| c.sde.mean), "mean of the SDE estimator of f")?;
            dataset(&g, "sde_m2", &shape, &f64s(&|c| c.sde.m2), "sum of squared deviations of the SDE estimator")?;
            dataset(&g, "bias_count", &shape, &u64s(&|c| c.bias.count), "paths")?;
            dataset(&g, "bias_mean", &shape, &f64s(&|c| c.bias.mean), "mean of R_m − R_2m per path")?;
            dataset(&g, "bias_m2", &shape, &f64s(&|c| c.bias.m2), "sum of squared deviations of R_m − R_2m")?;
            dataset(&g, "weak_error", &shape, &f64s(&|c| c.weak_error), "E f SGA − E f SDE")?;
            dataset(&g, "standard_error", &shape, &f64s(&|c| c.std_error), "standard error of weak_error")?;
            dataset(&g, "bias_estimate", &shape, &f64s(&|c| c.bias_estimate), "|R_m − R_2m|, SDE discretisation bias estimate")?;
            let resolved: Vec<u8> = cells.iter().map(|c| c.resolved as u8).collect();
            dataset(&g, "resolved", &shape, &resolved, "1 when |e| ≥ 4 SE and bias_estimate ≤ 0.1 |e|")?;
            let dsga: Vec<u64> = s.diverged.iter().map(|d| d.0).collect();
            let dsde: Vec<u64> = s.diverged.iter().map(|d| d.1).collect();
            dataset(&g, "diverged_sga", &[ne], &dsga, "SGA chains skipped as diverged")?;
            dataset(&g, "diverged_sde", &[ne], &dsde, "SDE paths skipped as diverged")?;
            let fits: Vec<_> = s.orders.iter().flatten().collect();
            let order: Vec<f64> = fits.iter().map(|o| o.map_or(f64::NAN, |o| o.order)).collect();
            let hw: Vec<f64> = fits.iter().map(|o| o.map_or(f64::NAN, |o| o.half_width)).collect();
            let pts: Vec<u32> = fits.iter().map(|o| o.map_or(0, |o| o.points as u32)).collect();
            dataset(&g, "order", &[nr, nf], &order, "fitted slope of log|e| on log η")?;
            dataset(&g, "order_half_width", &[nr, nf], &hw, "half-width of the order interval at the confidence level")?;
            dataset(&g, "order_points", &[nr, nf], &pts, "resolved η values in the fit")?;
        }
        f.flush()?;
    }
    std::fs::rename(&tmp, path).map_err(|e| hdf5::Error::from(format!("cannot rename {} to {}: {e}", tmp.display(), path.display()).as_str()))?;
    Ok(())
}

/// The current UTC time as ISO 8601, from the system clock (no time-zone crate needed).
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}
