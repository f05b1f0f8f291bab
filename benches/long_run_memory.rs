//! Resident memory of the long-run sample writer: `gansde long-run
//! jobs/long-run-lq.toml --skip-analysis` storing 10⁶, 10⁷ and 10⁸ sample
//! scalars (u only; the FDR terms come on top), peak RSS by GNU time, in one
//! run. Blocks are written as soon as they are complete, so memory should not
//! grow with the output. Needs GNU time (/usr/bin/time) and ~1 GB of disk.

use std::process::Command;

/// Runs one size; returns (wall s, peak RSS KiB, bytes on disk).
fn measure(paths: u64, horizon: f64) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let job = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/long-run-lq.toml");
    let sets = [
        "sga.schemes=[\"sml\"]".to_string(),
        format!("sga.horizon={horizon:.1}"),
        "long_run.record_every=0.1".into(),
        "long_run.burn_in=10.0".into(),
        format!("long_run.chains={paths}"),
        format!("long_run.sde_paths={paths}"),
        "long_run.block=50".into(),
        "long_run.observe_every=1000".into(),
        "long_run.lags=[0.5]".into(),
    ];
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "TIME %e %M", env!("CARGO_BIN_EXE_gansde"), "long-run", "--quiet", "--skip-analysis", "--threads", "2", "--out"]).arg(dir.path()).arg(job);
    // The scheduler table of the lq job needs "sml", which the job keeps; drop it to keep two kinds.
    for s in &sets {
        cmd.args(["--set", s]);
    }
    cmd.args(["--set", "long_run.scheduler.window=1"]);
    let o = cmd.output().expect("GNU time and gansde run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("TIME ")).expect("GNU time output");
    let v: Vec<f64> = line[5..].split_whitespace().map(|x| x.parse().unwrap()).collect();
    let du = Command::new("du").args(["-sb"]).arg(dir.path().join("samples")).output().unwrap();
    let bytes = String::from_utf8_lossy(&du.stdout).split_whitespace().next().unwrap().parse().unwrap();
    (v[0], v[1] as u64, bytes)
}

fn main() {
    println!("| sample scalars (u) | paths per kind | records | wall (s) | peak RSS | sample files on disk |");
    println!("|---|---|---|---|---|---|");
    // Kinds sga_sml, sga_sml_scheduled, sde_sml; 4 coordinates; records = horizon / 0.1 + 1.
    for (paths, horizon) in [(250u64, 100.0), (500, 500.0), (2500, 1000.0)] {
        let records = (horizon / 0.1) as u64 + 1;
        let scalars = 3 * paths * records * 4;
        let (wall, rss, bytes) = measure(paths, horizon);
        println!("| {:.2e} | {paths} | {records} | {wall:.1} | {:.1} MiB | {:.0} MiB |", scalars as f64, rss as f64 / 1024.0, bytes as f64 / 1048576.0);
    }
}
