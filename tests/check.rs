//! `gansde check`: validates without running and sizes the job.

use std::path::PathBuf;
use std::process::Command;

fn lq() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/lq.toml").to_str().unwrap().to_string()
}

#[test]
fn check_sizes_a_valid_job_without_writing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gansde"))
        .current_dir(dir.path())
        .args(["check", &lq(), "--ranks", "4", "--threads", "2", "--pilot", "5"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("valid") && out.contains("memory per rank") && out.contains("on 4 rank(s) x 2 thread(s)"), "{out}");
    // Chain-steps are counted exactly: 300000 chains per (scheme, η) and kind.
    // SGA: 2 schemes x 300000 x (10 + 20 + 40 + 80) steps; SDE at m = 8, 4, 2, 1 with
    // Richardson's finest level 4m: 2 x 300000 x 4 x (10·8 + 20·4 + 40·2 + 80·1).
    let sga = 2 * 300_000u64 * 150;
    let sde = 2 * 300_000u64 * 4 * 320;
    let want = format!("chain-steps      {:.3e}", (sga + sde) as f64);
    assert!(out.contains(&want), "{out}\nwant {want}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "check writes nothing");
}

#[test]
fn check_rejects_a_bad_job_with_exit_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_gansde")).args(["check", &lq(), "--set", "sga.batch=0"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sga.batch"));
}

#[test]
fn check_sizes_a_long_run_job() {
    let job = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/long-run-lq.toml");
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_gansde")).current_dir(dir.path()).arg("check").arg(&job).args(["--ranks", "2", "--pilot", "3"]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Five ensembles (SGA alt, sml, scheduled sml; SDE alt, sml) x 1200 paths x 2000 η-steps.
    assert!(out.contains("valid (long-run)") && out.contains(&format!("chain-steps      {:.3e}", 5.0 * 1200.0 * 2000.0)), "{out}");
    // u (4) per record for every kind, FDR terms (6) for the four unscheduled kinds, η for the scheduled one; 401 records.
    let scalars = 401 * 1200 * (5 * 4 + 4 * 6 + 1);
    assert!(out.contains(&format!("samples          {:.3e} scalars", scalars as f64)), "{out}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "check writes nothing");
}
