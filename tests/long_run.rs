//! The long-run study on `lq` against closed forms: stationary moments of
//! the SDEs (continuous Lyapunov equation) and of SGA (fixed point of the
//! discrete Lyapunov recursion), β(s) of coordinates against the exact
//! bivariate-Gaussian value (NUMERICS "β-mixing of a stationary OU
//! process"), and both FDRs on SDE samples.

use std::path::{Path, PathBuf};
use std::process::Command;

use gansde::game::{Game, Lq};
use gansde::job::{self, Drift, Job, ModelSpec, Scheme};
use gansde::linalg::{expm, lyapunov_continuous, solve, Mat};
use gansde::lq_exact::{sde_drift, sga_moments};
use gansde::sde::NoiseFactor;
use gansde::stats::mixing::gaussian_beta;

mod common;
use common::NO_HDF5_LOCKING;

fn job_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/long-run-lq.toml")
}

fn load(set: &[&str]) -> Job {
    job::load(&job_path(), &set.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("a valid job")
}

fn game(job: &Job) -> Lq {
    let ModelSpec::Lq { a, c, d } = &job.model else { panic!("an lq job") };
    Lq::new(a.clone(), c.clone(), d.clone(), job.latent.clone(), job.real.clone())
}

/// Runs `gansde long-run` with the overrides into `out`; panics unless it exits 0.
fn run(out: &Path, set: &[&str]) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gansde"));
    c.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1).args(["long-run", "--quiet", "--threads", "2", "--out"]).arg(out).arg(job_path());
    for s in set {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "long-run failed: {}", String::from_utf8_lossy(&o.stderr));
}

fn read(f: &hdf5::File, name: &str) -> Vec<f64> {
    f.dataset(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_raw::<f64>().unwrap()
}

/// Stationary mean and covariance of the OU process du = (K u + k) dt + σ dW.
fn ou_stationary(k: &Mat, kv: &[f64], q: &Mat) -> (Vec<f64>, Mat) {
    let minus_k: Vec<f64> = kv.iter().map(|v| -v).collect();
    (solve(k, &minus_k).expect("K is invertible"), lyapunov_continuous(k, q))
}

fn diffusion(g: &Lq, job: &Job) -> Mat {
    NoiseFactor::Block.covariance(g, &job.init).scale(job.etas[0] / job.batch as f64)
}

/// Every entry of mean and covariance within 4 SE of the closed form.
fn assert_moments(f: &hdf5::File, kind: &str, mean: &[f64], cov: &Mat) {
    let (m, mse) = (read(f, &format!("analysis/{kind}/mean")), read(f, &format!("analysis/{kind}/mean_se")));
    let (c, cse) = (read(f, &format!("analysis/{kind}/cov")), read(f, &format!("analysis/{kind}/cov_se")));
    let d = mean.len();
    for a in 0..d {
        let z = (m[a] - mean[a]) / mse[a];
        assert!(z.abs() < 4.0, "{kind} mean[{a}]: {} vs exact {} (z = {z:.2})", m[a], mean[a]);
        for b in 0..d {
            let z = (c[a * d + b] - cov[(a, b)]) / cse[a * d + b];
            assert!(z.abs() < 4.0, "{kind} cov[{a},{b}]: {} vs exact {} (z = {z:.2})", c[a * d + b], cov[(a, b)]);
        }
    }
}

#[test]
fn lq_stationary_moments_match_lyapunov_and_fdrs_hold_on_sde_samples() {
    // The slowest mode of these dynamics decays like e^{-0.3 t}: by t = 50 the start is forgotten to 1e-6.
    let set = ["sga.horizon=250.0", "long_run.burn_in=50.0", "long_run.chains=400", "long_run.sde_paths=400"];
    let job = load(&set);
    let g = game(&job);
    let eta = job.etas[0];
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &set);
    let f = hdf5::File::open(dir.path().join("long_run.h5")).unwrap();
    for (kind, drift) in [("sde_alt", Drift::SecondOrder), ("sde_sml", Drift::FirstOrder)] {
        let (k, kv) = sde_drift(&g, drift, eta);
        let (mean, cov) = ou_stationary(&k, &kv, &diffusion(&g, &job));
        assert_moments(&f, kind, &mean, &cov);
        for fdr in ["fdr1", "fdr2"] {
            let v = read(&f, &format!("analysis/{kind}/{fdr}"));
            let z = v[4] / v[5];
            assert!(z.abs() < 4.0, "{kind} {fdr}: lhs {} rhs {} gap {} ± {} (z = {z:.2})", v[0], v[2], v[4], v[5]);
        }
    }
    for (kind, scheme) in [("sga_alt", Scheme::Alt), ("sga_sml", Scheme::Sml)] {
        // The fixed point of the SGA moment recursion (the discrete Lyapunov solution), reached to 1e-12.
        let a = sga_moments(&g, scheme, eta, job.batch, &job.init, 20_000);
        let b = sga_moments(&g, scheme, eta, job.batch, &job.init, 40_000);
        assert!(a.cov.data.iter().zip(&b.cov.data).all(|(x, y)| (x - y).abs() < 1e-12), "the recursion has converged");
        assert_moments(&f, kind, &b.mean, &b.cov);
        // SGA follows μ_η: at η = 0.1 its FDR gaps are many SE wide (the check can fail).
        let v = read(&f, &format!("analysis/{kind}/fdr2"));
        assert!((v[4] / v[5]).abs() > 4.0, "{kind}: FDR2 gap {} ± {} should show the O(η) deviation", v[4], v[5]);
    }
}

#[test]
fn lq_beta_of_a_coordinate_matches_the_bivariate_gaussian_value() {
    // 1000 stationary SDE paths × 1000 records: about 10^6 pairs per lag (NUMERICS: within 0.01 at nb = 20).
    let set = [
        "sga.schemes=[\"sml\"]",
        "sga.horizon=110.0",
        "long_run.burn_in=10.0",
        "long_run.record_every=0.1",
        "long_run.chains=2",
        "long_run.block=100",
        "long_run.sde_paths=1000",
        "long_run.observe_every=100",
        "long_run.projections=[\"theta1\", \"omega1\"]",
        "long_run.lags=[0.2, 0.4, 0.7, 1.0, 1.5, 2.5]",
        "long_run.bins=20",
    ];
    let job = load(&set);
    let g = game(&job);
    let (k, kv) = sde_drift(&g, Drift::FirstOrder, job.etas[0]);
    let (_, sigma) = ou_stationary(&k, &kv, &diffusion(&g, &job));
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &set);
    let f = hdf5::File::open(dir.path().join("long_run.h5")).unwrap();
    let beta = read(&f, "analysis/sde_sml/beta");
    let floor = read(&f, "analysis/sde_sml/beta_floor");
    let lags = read(&f, "analysis/lag_time");
    let mut checked = 0;
    for (j, coord) in [0usize, g.dim_theta()].into_iter().enumerate() {
        for (l, &s) in lags.iter().enumerate() {
            // Cov(u_{t+s}, u_t) = e^{Ks} Σ under the stationary law.
            let rho = expm(&k.scale(s)).mul(&sigma)[(coord, coord)] / sigma[(coord, coord)];
            let exact = gaussian_beta(rho);
            let est = beta[j * lags.len() + l];
            assert!(floor[j * lags.len() + l] < 0.015, "floor {} for 10^6 pairs", floor[j * lags.len() + l]);
            if (0.04..=0.55).contains(&exact) {
                assert!((est - exact).abs() < 0.01, "coordinate {coord}, s = {s}: β̂ {est} vs exact {exact} (ρ = {rho})");
                checked += 1;
            }
        }
    }
    assert!(checked >= 3, "only {checked} lags with β in [0.04, 0.55]");
}

#[test]
fn iris_job_reports_both_laws_mixing_rates_and_both_fdrs() {
    // jobs/long-run-iris-tanh-wgan.toml at a tenth of its paths (the full job takes about 2 minutes).
    let job = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/long-run-iris-tanh-wgan.toml");
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gansde"))
        .env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1)
        .args(["long-run", "--quiet", "--threads", "2", "--out"])
        .arg(dir.path())
        .arg(&job)
        .args(["--set", "long_run.chains=400", "--set", "long_run.sde_paths=80", "--set", "long_run.block=20"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = String::from_utf8_lossy(&o.stdout);
    for kind in ["sga_alt:", "sga_sml:", "sga_sml_scheduled:", "sde_alt:", "sde_alt_half:", "sde_sml:", "sde_sml_half:"] {
        assert!(report.contains(kind), "report lacks {kind}\n{report}");
    }
    assert!(report.contains("μ* from SDE paths, μ_η from SGA chains"));
    assert_eq!(report.matches("FDR1 E[").count(), 6, "FDR1 for every SGA and SDE kind but the scheduled one\n{report}");
    assert_eq!(report.matches("FDR2 E[").count(), 6);
    // At least one β(s) decay rate was fitted (with an SE) for the SGA chains.
    assert!(report.lines().any(|l| l.contains("decay rate:") && l.contains(" ± ")), "no fitted β rate\n{report}");
    let f = hdf5::File::open(dir.path().join("long_run.h5")).unwrap();
    let fdr = read(&f, "analysis/sde_sml/fdr1");
    assert!(fdr.iter().all(|x| x.is_finite()), "{fdr:?}");
    assert_eq!(f.dataset("samples/sga_alt").unwrap().shape(), vec![400, 81, 12]);
}
