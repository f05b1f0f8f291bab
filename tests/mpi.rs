//! The real binary under `mpirun` (OpenMPI, --oversubscribe --bind-to none):
//! every numeric dataset bit-identical to the single-process run at 1–4 ranks
//! × 1–2 threads; failures reported once with the documented exit code.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// HDF5 without file locking in this process (see common).
mod common;

fn job() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/lq.toml").to_str().unwrap().to_string()
}

const SMALL: [&str; 6] = ["--set", "estimate.paths=3000", "--set", "estimate.block=250", "--set", "sga.eta=[0.2, 0.1, 0.05]"];

fn mpirun(ranks: usize, args: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["--oversubscribe", "--bind-to", "none", "-n", &ranks.to_string(), env!("CARGO_BIN_EXE_gansde")])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .expect("mpirun runs (install openmpi-bin: scripts/setup-debian.sh)")
}

fn datasets(path: &Path) -> Vec<(String, Vec<u64>)> {
    let f = hdf5::File::open(path).unwrap();
    let mut out = Vec::new();
    for scheme in ["alt", "sml"] {
        let g = f.group(&format!("weak_error/{scheme}")).unwrap();
        for name in g.member_names().unwrap() {
            let ds = g.dataset(&name).unwrap();
            let bits: Vec<u64> = if ds.dtype().unwrap().is::<f64>() {
                ds.read_raw::<f64>().unwrap().iter().map(|v| v.to_bits()).collect()
            } else if ds.dtype().unwrap().is::<u64>() {
                ds.read_raw::<u64>().unwrap()
            } else if ds.dtype().unwrap().is::<u32>() {
                ds.read_raw::<u32>().unwrap().iter().map(|&v| v as u64).collect()
            } else {
                ds.read_raw::<u8>().unwrap().iter().map(|&v| v as u64).collect()
            };
            out.push((format!("{scheme}/{name}"), bits));
        }
    }
    out
}

#[test]
fn every_layout_gives_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    let o = Command::new(env!("CARGO_BIN_EXE_gansde"))
        .args(["weak-error", &job(), "--quiet", "--threads", "1", "--out", single.to_str().unwrap()])
        .args(SMALL)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = datasets(&single.join("weak_error.h5"));
    assert!(want.len() >= 2 * 19, "{} datasets", want.len());
    for ranks in 1..=4 {
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("r{ranks}t{threads}"));
            let o = mpirun(ranks, &[&["weak-error", &job(), "--quiet", "--threads", threads, "--out", out.to_str().unwrap()][..], &SMALL[..]].concat());
            assert!(o.status.success(), "{ranks}x{threads}: {}", String::from_utf8_lossy(&o.stderr));
            // One report, from rank 0.
            let stdout = String::from_utf8_lossy(&o.stdout);
            assert_eq!(stdout.matches("chain-steps in").count(), 1, "{stdout}");
            assert!(stdout.contains(&format!("on {ranks} rank(s) x {threads} thread(s)")), "{stdout}");
            let got = datasets(&out.join("weak_error.h5"));
            assert_eq!(got.len(), want.len());
            for ((n1, a), (n2, b)) in want.iter().zip(&got) {
                assert_eq!(n1, n2);
                assert_eq!(a, b, "{n1} differs at {ranks} ranks x {threads} threads");
            }
            let f = hdf5::File::open(out.join("weak_error.h5")).unwrap();
            assert_eq!(f.attr("ranks").unwrap().read_scalar::<u64>().unwrap(), ranks as u64);
        }
    }
}

#[test]
fn a_divergence_on_any_rank_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("div");
    let o = mpirun(
        3,
        &[&["weak-error", &job(), "--quiet", "--threads", "1", "--out", out.to_str().unwrap(), "--set", "divergence.bound=1.6"][..], &SMALL[..]].concat(),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    assert!(stderr.contains("diverged at η = "), "{stderr}");
    assert!(!out.join("weak_error.h5").exists());
}

#[test]
fn bad_input_is_reported_once_with_exit_2() {
    let o = mpirun(3, &["weak-error", &job(), "--quiet", "--set", "sga.batch=0"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    assert!(stderr.contains("sga.batch"), "{stderr}");
}

#[test]
fn a_precision_target_gives_the_same_bits_at_1_and_3_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let target = [
        "--set",
        "estimate.paths=1000",
        "--set",
        "estimate.block=250",
        "--set",
        "estimate.target_se=0.0015",
        "--set",
        "estimate.max_paths=40000",
        "--set",
        "sga.eta=[0.2, 0.1, 0.05]",
    ];
    let one = dir.path().join("one");
    let o = Command::new(env!("CARGO_BIN_EXE_gansde"))
        .args(["weak-error", &job(), "--quiet", "--threads", "2", "--out", one.to_str().unwrap()])
        .args(target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("precision target SE ≤ 0.0015"), "{stdout}");
    let three = dir.path().join("three");
    let o = mpirun(3, &[&["weak-error", &job(), "--quiet", "--threads", "1", "--out", three.to_str().unwrap()][..], &target[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (datasets(&one.join("weak_error.h5")), datasets(&three.join("weak_error.h5")));
    assert_eq!(a, b);
    // The target grew the study past its first round, in whole blocks, up to the cap at most.
    let f = hdf5::File::open(one.join("weak_error.h5")).unwrap();
    assert!(f.group("weak_error").unwrap().attr("rounds").unwrap().read_scalar::<u64>().unwrap() > 1);
    let counts: Vec<u64> = f.dataset("weak_error/alt/sga_count").unwrap().read_raw().unwrap();
    assert!(counts.iter().all(|&c| c % 250 == 0 && (1000..=40000).contains(&c)), "{counts:?}");
    assert!(counts.iter().any(|&c| c > 1000), "{counts:?}");
    // Where the target is reported met, every standard error is within it.
    let met: Vec<u8> = f.dataset("weak_error/alt/target_met").unwrap().read_raw().unwrap();
    let se: Vec<f64> = f.dataset("weak_error/alt/standard_error").unwrap().read_raw().unwrap();
    let per_eta = se.len() / met.len();
    for (e, &m) in met.iter().enumerate() {
        let worst = se[e * per_eta..(e + 1) * per_eta].iter().cloned().fold(0.0, f64::max);
        assert_eq!(m == 1, worst <= 0.0015, "η index {e}: met {m}, worst SE {worst}");
    }
}

#[test]
fn more_ranks_than_blocks_still_reduce() {
    // Two blocks over five ranks: three ranks own nothing and send empty shares.
    let dir = tempfile::tempdir().unwrap();
    let tiny = ["--set", "estimate.paths=4", "--set", "estimate.block=4", "--set", "sga.eta=[0.2]", "--set", "sga.schemes=[\"alt\"]"];
    let single = dir.path().join("single");
    let o = Command::new(env!("CARGO_BIN_EXE_gansde")).args(["weak-error", &job(), "--quiet", "--out", single.to_str().unwrap()]).args(tiny).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let five = dir.path().join("five");
    let o = mpirun(5, &[&["weak-error", &job(), "--quiet", "--threads", "1", "--out", five.to_str().unwrap()][..], &tiny[..]].concat());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(datasets_alt(&single.join("weak_error.h5")), datasets_alt(&five.join("weak_error.h5")));
}

fn datasets_alt(path: &Path) -> Vec<u64> {
    let f = hdf5::File::open(path).unwrap();
    ["sga_mean", "sga_m2", "sde_mean", "sde_m2", "bias_m2"]
        .iter()
        .flat_map(|d| f.dataset(&format!("weak_error/alt/{d}")).unwrap().read_raw::<f64>().unwrap().into_iter().map(f64::to_bits))
        .collect()
}

#[test]
fn a_divergence_on_some_ranks_stops_every_rank_and_leaves_nothing() {
    // With B = 1 a few chains of one η leave |u| ≤ 2.5: only the ranks owning them fail.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("div");
    let o = mpirun(
        3,
        &[
            "weak-error",
            &job(),
            "--quiet",
            "--threads",
            "1",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "estimate.paths=60000",
            "--set",
            "sga.batch=1",
            "--set",
            "divergence.bound=2.5",
            "--checkpoint-every",
            "1",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{stderr}");
    assert_eq!(stderr.matches("error: ").count(), 1, "{stderr}");
    assert!(stderr.contains("diverged at η = "), "{stderr}");
    assert!(!out.exists(), "a diverged study leaves nothing behind");
}
