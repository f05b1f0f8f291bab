//! Stop and resume: SIGTERM (state saved, exit 75) and SIGKILL (state from
//! the last interval) partway, resumed on another rank/thread layout, give
//! the bits of an uninterrupted run; foreign state is refused; a finished
//! study re-submitted does nothing.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

// HDF5 without file locking in this process (see common).
mod common;

fn job() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/lq.toml").to_str().unwrap().to_string()
}

/// About 15 s of work on two threads.
const SIZE: [&str; 6] = ["--set", "estimate.paths=120000", "--set", "estimate.block=1000", "--set", "sga.eta=[0.2, 0.1]"];

fn args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["weak-error", "--quiet", "--out", out];
    a.extend_from_slice(&SIZE);
    a.extend_from_slice(extra);
    a
}

fn gansde(a: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gansde"));
    c.arg(a[0]).arg(job()).args(&a[1..]);
    c.output().unwrap()
}

fn mpirun(ranks: usize, a: &[&str]) -> Output {
    Command::new("mpirun")
        .args(["--oversubscribe", "--bind-to", "none", "-n", &ranks.to_string(), env!("CARGO_BIN_EXE_gansde"), a[0], &job()])
        .args(&a[1..])
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .output()
        .unwrap()
}

fn bits(path: &Path) -> Vec<(String, Vec<u64>)> {
    let f = hdf5::File::open(path).unwrap();
    let mut out = Vec::new();
    for scheme in ["alt", "sml"] {
        for d in ["sga_count", "sde_count", "bias_count"] {
            out.push((format!("{scheme}/{d}"), f.dataset(&format!("weak_error/{scheme}/{d}")).unwrap().read_raw::<u64>().unwrap()));
        }
        for d in ["sga_mean", "sga_m2", "sde_mean", "sde_m2", "bias_mean", "bias_m2", "weak_error", "standard_error", "order", "order_half_width"] {
            let v: Vec<f64> = f.dataset(&format!("weak_error/{scheme}/{d}")).unwrap().read_raw().unwrap();
            out.push((format!("{scheme}/{d}"), v.iter().map(|x| x.to_bits()).collect()));
        }
    }
    out
}

/// Starts a run that saves state every second and sends `signal` once the
/// first state file exists.
fn interrupted(out: &Path, signal: &str) -> Output {
    let o = out.to_str().unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_gansde"));
    c.args(["weak-error", &job(), "--quiet", "--out", o, "--threads", "2", "--checkpoint-every", "1"]).args(SIZE);
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let state = out.join("state/rank-00000.state");
    let start = Instant::now();
    while !state.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no state saved within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn interrupted_runs_resume_to_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let o = gansde(&args(full.to_str().unwrap(), &["--threads", "2"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let want = bits(&full.join("weak_error.h5"));

    // SIGTERM: state saved, exit 75, no results file; resume on 2 ranks x 1 thread.
    let term = dir.path().join("term");
    let o = interrupted(&term, "-TERM");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains("stopped by a signal; completed blocks are saved") && stderr.contains("--resume"), "{stderr}");
    assert!(!term.join("weak_error.h5").exists());
    let o = mpirun(2, &args(term.to_str().unwrap(), &["--threads", "1", "--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bits(&term.join("weak_error.h5")), want, "SIGTERM + resume on 2 ranks");
    assert!(!term.join("state").exists(), "state is removed once results are complete");

    // SIGKILL: the last saved interval survives intact; resume on 3 ranks x 1 thread.
    let kill = dir.path().join("kill");
    let o = interrupted(&kill, "-KILL");
    assert_eq!(o.status.code(), None, "killed by a signal");
    assert!(!kill.join("weak_error.h5").exists());
    let o = mpirun(3, &args(kill.to_str().unwrap(), &["--threads", "1", "--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bits(&kill.join("weak_error.h5")), want, "SIGKILL + resume on 3 ranks");

    // SIGTERM to one rank of three (not rank 0): every rank stops and saves, exit 75.
    let one = dir.path().join("one");
    let o = one.to_str().unwrap();
    let mut c = Command::new("mpirun");
    c.args([
        "--oversubscribe",
        "--bind-to",
        "none",
        "-n",
        "3",
        env!("CARGO_BIN_EXE_gansde"),
        "weak-error",
        &job(),
        "--quiet",
        "--out",
        o,
        "--threads",
        "1",
        "--checkpoint-every",
        "1",
    ])
    .args(SIZE)
    .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
    .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    let child = c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let start = Instant::now();
    while !one.join("state/rank-00001.state").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no state saved within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ranks = Command::new("pgrep").args(["-P", &child.id().to_string()]).output().unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&ranks.stdout).split_whitespace().map(String::from).collect();
    assert_eq!(pids.len(), 3, "mpirun's children: {pids:?}");
    Command::new("kill").args(["-TERM", &pids[2]]).status().unwrap();
    let stopped = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(75), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stopped.elapsed() < Duration::from_secs(10), "the other ranks stop promptly");
    let o = gansde(&args(one.to_str().unwrap(), &["--threads", "2", "--resume"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(bits(&one.join("weak_error.h5")), want, "SIGTERM to one rank + resume on 1 rank x 2 threads");

    // A finished study re-submitted with --resume does nothing and overwrites nothing.
    let before = std::fs::read(kill.join("weak_error.h5")).unwrap();
    let o = gansde(&args(kill.to_str().unwrap(), &["--resume"]));
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("study already complete"));
    assert_eq!(std::fs::read(kill.join("weak_error.h5")).unwrap(), before);
}

#[test]
fn state_from_another_study_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x");
    let o = interrupted(&out, "-TERM");
    assert_eq!(o.status.code(), Some(75));
    // Another seed is another study.
    let o = gansde(&args(out.to_str().unwrap(), &["--resume", "--set", "seed=99"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("belongs to another study"), "{stderr}");
    // Without --resume the saved state is not silently discarded.
    let o = gansde(&args(out.to_str().unwrap(), &[]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("pass --resume to continue it or --force to start over"), "{stderr}");
    assert!(!out.join("weak_error.h5").exists());
}
