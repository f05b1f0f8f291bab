//! The results file as researchers meet it: written by the real binary, opened
//! with h5py, holding the datasets README.md documents, bit-identical for any
//! thread count; and the shipped quickstart job reporting both orders.

use std::path::{Path, PathBuf};
use std::process::Command;

// HDF5 without file locking in this process (see common).
mod common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gansde(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gansde")).args(args).output().expect("gansde runs")
}

/// Debian's python3-h5py belongs to the system interpreter, which need not be first on PATH.
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

fn h5py(script: &str, file: &Path) -> String {
    let out = Command::new(python()).arg("-c").arg(script).arg(file).output().expect("python3 runs");
    assert!(
        out.status.success(),
        "h5py check failed (is python3-h5py installed? scripts/setup-debian.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every dataset and attribute README.md documents for a weak-error results file.
const CHECK: &str = r#"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
for a in ["study", "job", "crate_version", "git_commit", "rng_scheme", "block_size", "seed", "fingerprint", "ranks", "threads", "created_utc", "elapsed_seconds", "reduce_seconds", "state_save_seconds", "chain_steps"]:
    assert a in f.attrs, a
eta = f["weak_error/eta"][:]
rec = f["weak_error/record_time"][:]
fun = [s.decode() if isinstance(s, bytes) else s for s in f["weak_error/test_function"][:]]
shape = (len(eta), len(rec), len(fun))
assert f["data/latent"].ndim == 2 and f["data/real"].ndim == 2
for scheme in ["alt", "sml"]:
    g = f["weak_error/" + scheme]
    for a in ["drift", "noise", "integrator", "batch", "paper_order", "confidence", "z"]:
        assert a in g.attrs, (scheme, a)
    for d in ["sga_count", "sga_mean", "sga_m2", "sde_count", "sde_mean", "sde_m2", "bias_count", "bias_mean", "bias_m2",
              "weak_error", "standard_error", "bias_estimate", "resolved"]:
        assert g[d].shape == shape, (scheme, d, g[d].shape)
        assert "units" in g[d].attrs, (scheme, d)
    for d in ["diverged_sga", "diverged_sde", "substeps"]:
        assert g[d].shape == (len(eta),), (scheme, d)
    for d in ["order", "order_half_width", "order_points"]:
        assert g[d].shape == (len(rec), len(fun)), (scheme, d)
    # The stored statistics reproduce the derived numbers offline.
    n1, n2 = g["sga_count"][:], g["sde_count"][:]
    se = np.sqrt(g["sga_m2"][:] / (n1 - 1) / n1 + g["sde_m2"][:] / (n2 - 1) / n2)
    assert np.allclose(se, g["standard_error"][:], rtol=1e-12), scheme
    assert np.array_equal(g["sga_mean"][:] - g["sde_mean"][:], g["weak_error"][:]), scheme
    print(scheme, g.attrs["paper_order"], list(g["order"][0]))
print("functions", fun)
"#;

fn small_lq(dir: &Path, threads: &str) -> PathBuf {
    let out = dir.join(format!("t{threads}"));
    let o = gansde(&[
        "weak-error",
        root().join("jobs/lq.toml").to_str().unwrap(),
        "--set",
        "estimate.paths=4000",
        "--set",
        "estimate.block=300",
        "--set",
        "estimate.functions=[\"theta1\", \"norm2\", \"theta1*omega1\", \"loss\", \"u4\"]",
        "--threads",
        threads,
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.join("weak_error.h5")
}

#[test]
fn h5py_finds_the_documented_datasets_and_threads_do_not_change_bits() {
    let dir = tempfile::tempdir().unwrap();
    let one = small_lq(dir.path(), "1");
    let two = small_lq(dir.path(), "2");
    let text = h5py(CHECK, &one);
    assert!(text.contains("functions ['theta1', 'norm2', 'theta1*omega1', 'loss', 'u4']"), "{text}");
    // Every numeric dataset, bit for bit.
    let a = hdf5::File::open(&one).unwrap();
    let b = hdf5::File::open(&two).unwrap();
    let mut compared = 0;
    for scheme in ["alt", "sml"] {
        for d in
            ["sga_mean", "sga_m2", "sde_mean", "sde_m2", "bias_mean", "bias_m2", "weak_error", "standard_error", "bias_estimate", "order", "order_half_width"]
        {
            let name = format!("weak_error/{scheme}/{d}");
            let x: Vec<f64> = a.dataset(&name).unwrap().read_raw().unwrap();
            let y: Vec<f64> = b.dataset(&name).unwrap().read_raw().unwrap();
            let xb: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
            let yb: Vec<u64> = y.iter().map(|v| v.to_bits()).collect();
            assert_eq!(xb, yb, "{name} differs between 1 and 2 threads");
            compared += 1;
        }
    }
    assert_eq!(compared, 22);
    let t1: u64 = a.attr("threads").unwrap().read_scalar().unwrap();
    let t2: u64 = b.attr("threads").unwrap().read_scalar().unwrap();
    assert_eq!((t1, t2), (1, 2));
}

#[test]
fn the_quickstart_reports_both_orders_with_intervals() {
    // The README's main job, at its shipped size (about 1.5 minutes on two cores).
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("qs");
    let o = gansde(&["weak-error", root().join("jobs/quickstart.toml").to_str().unwrap(), "--quiet", "--out", out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for scheme in ["alt", "sml"] {
        let section = stdout.split("\n== ").find(|s| s.starts_with(&format!("{scheme} vs SDE")) && s.contains("f = theta1 |")).expect("theta1 table");
        let line = section.lines().find(|l| l.starts_with("observed order ")).unwrap_or_else(|| panic!("{scheme}: no fitted order:\n{section}"));
        // "observed order 1.86 ± 0.07 (95% interval, ...) | paper: 2"
        let nums: Vec<f64> = line.split(|c: char| !(c.is_ascii_digit() || c == '.')).filter_map(|t| t.parse().ok()).collect();
        let (order, hw) = (nums[0], nums[1]);
        let paper = if scheme == "alt" { 2.0 } else { 1.0 };
        assert!(line.ends_with(&format!("paper: {paper}")), "{line}");
        assert!(hw > 0.0 && hw < 0.5, "{line}");
        // ALT resolves a clearly super-linear order, SML a first-order one.
        if scheme == "alt" {
            assert!(order > 1.5, "{line}");
        } else {
            assert!((order - 1.0).abs() < 0.3, "{line}");
        }
    }
    h5py(CHECK, &out.join("weak_error.h5"));
}
