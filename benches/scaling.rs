//! Cluster-layer benchmark (`cargo bench --bench scaling`): runs the real
//! binary on one job at 1 rank × 1 thread, 1 × 2 and 2 × 1 (mpirun
//! --bind-to none) and prints speed-ups and CPU-time efficiency measured in
//! this one run, the share of rank 0's time spent reducing and saving state,
//! and the peak resident memory of runs of 10⁸ and 10⁹ chain-steps.
//! Needs GNU time (/usr/bin/time, Debian package `time`) and OpenMPI.

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gansde");

struct Run {
    wall: f64,
    cpu: f64,
    max_rss_kib: u64,
    overhead: f64,
    elapsed: f64,
    chain_steps: u64,
}

fn job() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/lq.toml").to_str().unwrap().to_string()
}

fn run(ranks: usize, threads: usize, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.args(["-f", "TIME %e %U %S %M"]);
    if ranks > 1 {
        cmd.args(["mpirun", "--oversubscribe", "--bind-to", "none", "-n", &ranks.to_string()]);
        cmd.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    }
    cmd.args([BIN, "weak-error", &job(), "--quiet", "--threads", &threads.to_string(), "--out", out.to_str().unwrap(), "--checkpoint-every", "2"]);
    cmd.args(extra);
    let o = cmd.output().expect("GNU time and gansde run");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("TIME ")).expect("GNU time output");
    let v: Vec<f64> = line[5..].split_whitespace().map(|x| x.parse().unwrap()).collect();
    let f = hdf5::File::open(out.join("weak_error.h5")).unwrap();
    let attr = |n: &str| f.attr(n).unwrap().read_scalar::<f64>().unwrap();
    Run {
        wall: v[0],
        cpu: v[1] + v[2],
        max_rss_kib: v[3] as u64,
        overhead: attr("reduce_seconds") + attr("state_save_seconds"),
        elapsed: attr("elapsed_seconds"),
        chain_steps: f.attr("chain_steps").unwrap().read_scalar::<u64>().unwrap(),
    }
}

fn main() {
    // About 30 s of single-thread work (about 4·10⁸ chain-steps).
    let size = ["--set", "estimate.paths=80000"];
    let base = run(1, 1, &size);
    println!("layout        wall(s)  cpu(s)  speed-up  cpu-efficiency  reduce+save share");
    let show = |name: &str, r: &Run, workers: f64| {
        let speedup = base.wall / r.wall;
        println!("{name:<12} {:>8.2} {:>7.2} {:>9.2}x {:>14.0}% {:>17.3}%", r.wall, r.cpu, speedup, 100.0 * base.cpu / r.cpu, 100.0 * r.overhead / r.elapsed);
        let _ = workers;
    };
    show("1 x 1", &base, 1.0);
    show("1 x 2", &run(1, 2, &size), 2.0);
    show("2 x 1", &run(2, 1, &size), 2.0);
    println!("(speed-up: wall time of 1 x 1 over the layout's; cpu-efficiency: CPU time of 1 x 1 over the layout's)");

    // Memory: resident set size stays flat as chain-steps grow tenfold.
    let small = run(1, 2, &["--set", "estimate.paths=35000"]);
    let large = run(1, 2, &["--set", "estimate.paths=350000"]);
    println!(
        "peak RSS: {:.2e} chain-steps {} KiB; {:.2e} chain-steps {} KiB (ratio {:.2})",
        small.chain_steps as f64,
        small.max_rss_kib,
        large.chain_steps as f64,
        large.max_rss_kib,
        large.max_rss_kib as f64 / small.max_rss_kib as f64
    );
}
