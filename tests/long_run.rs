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
use gansde::stats::mixing::{gaussian_beta, w1_noise_level, wasserstein1};

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

/// Stationary records of `kind` per coordinate, paths in order, from the samples themselves.
fn stationary(f: &hdf5::File, kind: &str) -> Vec<Vec<f64>> {
    let ds = f.dataset(&format!("samples/{kind}")).unwrap();
    let (p, r, d) = (ds.shape()[0], ds.shape()[1], ds.shape()[2]);
    let first = f.attr("first_stationary_record").unwrap().read_scalar::<u64>().unwrap() as usize;
    let u = ds.read_raw::<f64>().unwrap();
    (0..d).map(|c| (0..p).flat_map(|pi| (first..r).map(move |t| (pi, t))).map(|(pi, t)| u[(pi * r + t) * d + c]).collect()).collect()
}

/// The marginals and SGA–SDE distances in analysis/ against the samples:
/// every kind's histogram lies on the same edges, spanning exactly the
/// extremes of all kinds' stationary records, with each bin's density the
/// count of this kind's records in it; W1 pairs each SGA kind with the SDE
/// kind of its scheme at the job's step and equals W1 of their records.
fn assert_marginals_and_w1(f: &hdf5::File) {
    let kinds = f.group("samples").unwrap().member_names().unwrap();
    let samples: Vec<Vec<Vec<f64>>> = kinds.iter().map(|k| stationary(f, k)).collect();
    let d = samples[0].len();
    let nb = f.attr("bins").unwrap().read_scalar::<u64>().unwrap() as usize;
    for c in 0..d {
        let lo = samples.iter().flat_map(|s| s[c].iter().copied()).fold(f64::INFINITY, f64::min);
        let hi = samples.iter().flat_map(|s| s[c].iter().copied()).fold(f64::NEG_INFINITY, f64::max);
        for (k, s) in kinds.iter().zip(&samples) {
            let edges = read(f, &format!("analysis/{k}/hist_edges"));
            let dens = read(f, &format!("analysis/{k}/hist_density"));
            let (e, p) = (&edges[c * (nb + 1)..(c + 1) * (nb + 1)], &dens[c * nb..(c + 1) * nb]);
            let spans = e[0] == lo && (e[nb] - hi).abs() <= 1e-12 * (hi - lo);
            assert!(spans, "{k} coordinate {c}: edges {}..{} do not span all kinds' stationary records {lo}..{hi}", e[0], e[nb]);
            for b in 0..nb {
                let inside = s[c].iter().filter(|&&x| x >= e[b] && (x < e[b + 1] || (b == nb - 1 && x <= e[b + 1]))).count();
                let want = inside as f64 / (s[c].len() as f64 * (e[b + 1] - e[b]));
                // Bin edges are recomputed, so a record on an edge may count on either side.
                assert!((p[b] - want).abs() <= 2.0 / (s[c].len() as f64 * (e[b + 1] - e[b])), "{k} coordinate {c} bin {b}: density {} vs {want}", p[b]);
            }
        }
    }
    let w1 = f.group("analysis/w1_sga_sde").unwrap();
    let mut pairs = w1.member_names().unwrap();
    pairs.sort();
    assert_eq!(pairs, ["sga_alt", "sga_sml"], "one W1 row per plain SGA kind");
    for sga in pairs {
        let ds = w1.dataset(&sga).unwrap();
        let sde: String = ds.attr("sde").unwrap().read_scalar::<hdf5::types::VarLenUnicode>().unwrap().to_string();
        assert_eq!(sde, sga.replace("sga_", "sde_"), "{sga} is compared with the SDE of its scheme at the job's step");
        let (i, j) = (kinds.iter().position(|k| *k == sga).unwrap(), kinds.iter().position(|k| *k == sde).unwrap());
        let got = ds.read_raw::<f64>().unwrap();
        // Its noise level: the SDE kind's two halves of paths, scaled to these path counts.
        let noise = read(f, &format!("analysis/w1_noise/{sga}"));
        let paths = |k: &str| f.dataset(&format!("samples/{k}")).unwrap().shape()[0];
        let records = samples[j][0].len() / paths(&sde);
        assert_eq!(noise.len(), d);
        for c in 0..d {
            assert_eq!(got[c], wasserstein1(&samples[i][c], &samples[j][c]), "{sga} vs {sde} coordinate {c}");
            assert_eq!(noise[c], w1_noise_level(&samples[j][c], records, paths(&sga)), "{sga} noise level, coordinate {c}");
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
    assert_marginals_and_w1(&f);
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
