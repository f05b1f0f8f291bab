//! Resident memory of `gansde analyze` on `jobs/long-run-lq.toml` studies,
//! peak RSS by GNU time, in one run, beside the figure `gansde check` prints.
//! The analysis holds one kind's paths × records (plus one SDE kind's
//! stationary records), so its memory should grow with paths but not with
//! the number of block files the samples are spread over. Needs GNU time
//! (/usr/bin/time).

use std::path::Path;
use std::process::Command;

const JOB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/long-run-lq.toml");

fn sets(paths: u64, block: u64) -> Vec<String> {
    vec![format!("long_run.chains={paths}"), format!("long_run.sde_paths={paths}"), format!("long_run.block={block}")]
}

fn gansde(args: &[&str], sets: &[String]) -> std::process::Output {
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "TIME %e %M", env!("CARGO_BIN_EXE_gansde")]).args(args);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let o = cmd.output().expect("GNU time and gansde run");
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

/// (wall s, peak RSS MiB) from GNU time's line.
fn time_of(o: &std::process::Output) -> (f64, f64) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    let line = stderr.lines().find(|l| l.starts_with("TIME ")).expect("GNU time output");
    let v: Vec<f64> = line[5..].split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1] / 1024.0)
}

/// The analysis memory `gansde check` estimates, in MiB.
fn estimate(sets: &[String]) -> f64 {
    let o = gansde(&["check", JOB, "--pilot", "1"], sets);
    let out = String::from_utf8_lossy(&o.stdout);
    let at = out.find("needs up to about ").expect("check prints the analysis memory") + "needs up to about ".len();
    out[at..].split_whitespace().next().unwrap().parse().unwrap()
}

fn measure(dir: &Path, paths: u64, block: u64) -> (f64, f64, f64) {
    let sets = sets(paths, block);
    let out = dir.join(format!("p{paths}-b{block}"));
    gansde(&["long-run", "--quiet", "--skip-analysis", "--threads", "2", "--out", out.to_str().unwrap(), JOB], &sets);
    let (wall, rss) = time_of(&gansde(&["analyze", out.join("long_run.h5").to_str().unwrap()], &[]));
    (wall, rss, estimate(&sets))
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    println!("| paths per kind | block | block files per kind | analyze wall (s) | analyze peak RSS | `gansde check` estimate |");
    println!("|---|---|---|---|---|---|");
    for (paths, block) in [(1200u64, 10u64), (1200, 50), (1200, 300), (300, 50), (4800, 50)] {
        let (wall, rss, est) = measure(dir.path(), paths, block);
        println!("| {paths} | {block} | {} | {wall:.1} | {rss:.1} MiB | {est:.0} MiB |", paths.div_ceil(block));
    }
}
