//! The long-run sample store is bit-identical for any ranks × threads and
//! after a resume: SIGTERM (exit 75) or SIGKILL partway, resumed on another
//! layout, gives the same samples, η trajectories, FDR terms and analysis.
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::NO_HDF5_LOCKING;

fn job() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/long-run-lq.toml").to_str().unwrap().to_string()
}

/// A few seconds of work on two threads, every kind (SGA, scheduled SML, exact SDE) present.
const SIZE: [&str; 8] = ["--set", "long_run.chains=300", "--set", "long_run.sde_paths=300", "--set", "long_run.block=10", "--set", "sga.horizon=300.0"];

fn command(ranks: usize, out: &Path, extra: &[&str]) -> Command {
    let mut c = if ranks == 0 {
        Command::new(env!("CARGO_BIN_EXE_gansde"))
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--oversubscribe", "--bind-to", "none", "-n", &ranks.to_string(), env!("CARGO_BIN_EXE_gansde")]);
        c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
        c
    };
    c.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1);
    c.args(["long-run", "--quiet", "--out"]).arg(out).arg(job()).args(SIZE).args(extra);
    c
}

/// ranks = 0: a plain process (no launcher).
fn run(ranks: usize, out: &Path, extra: &[&str]) -> Output {
    command(ranks, out, extra).output().unwrap()
}

/// Every numeric dataset of the file (samples, observables, η, analysis), by name, as raw bits.
fn contents(path: &Path) -> Vec<(String, Vec<u64>)> {
    fn walk(g: &hdf5::Group, prefix: &str, out: &mut Vec<(String, Vec<u64>)>) {
        for name in g.member_names().unwrap() {
            let full = format!("{prefix}/{name}");
            if let Ok(sub) = g.group(&name) {
                walk(&sub, &full, out);
            } else if let Ok(ds) = g.dataset(&name) {
                if let Ok(v) = ds.read_raw::<f64>() {
                    out.push((full, v.iter().map(|x| x.to_bits()).collect()));
                }
            }
        }
    }
    let f = hdf5::File::open(path).unwrap();
    let mut out = Vec::new();
    for g in ["samples", "observables", "eta", "analysis"] {
        walk(&f.group(g).unwrap(), g, &mut out);
    }
    out.sort();
    out
}

fn assert_same(a: &Path, b: &Path, what: &str) {
    let (x, y) = (contents(a), contents(b));
    assert_eq!(x.iter().map(|p| &p.0).collect::<Vec<_>>(), y.iter().map(|p| &p.0).collect::<Vec<_>>(), "{what}: dataset names");
    assert!(x.iter().any(|(n, _)| n == "samples/sga_sml_scheduled") && x.iter().any(|(n, _)| n == "analysis/sde_alt/beta"), "{what}: every kind is there");
    for ((n, u), (_, v)) in x.iter().zip(&y) {
        assert!(u == v, "{what}: {n} differs");
    }
}

/// Starts a run (with `extra` flags), waits until some but not all blocks
/// are written, then signals it. A run over an earlier study (`--force`)
/// clears that study first: its results file going is the sign.
fn interrupted(out: &Path, signal: &str, extra: &[&str]) -> Output {
    let earlier = out.join("long_run.h5");
    let had_earlier = earlier.exists();
    let mut child = command(0, out, &[&["--threads", "2"][..], extra].concat()).spawn().unwrap();
    let t = Instant::now();
    while had_earlier && earlier.exists() {
        assert!(t.elapsed() < Duration::from_secs(60), "the earlier study was not cleared");
        std::thread::sleep(Duration::from_millis(5));
    }
    let blocks = |p: &Path| walkdir(p).into_iter().filter(|f| f.extension().is_some_and(|e| e == "h5")).count();
    while blocks(&out.join("samples")) < 8 {
        assert!(t.elapsed() < Duration::from_secs(60), "no blocks written");
        std::thread::sleep(Duration::from_millis(20));
    }
    Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    Output { status, stdout: Vec::new(), stderr: Vec::new() }
}

fn walkdir(p: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                v.extend(walkdir(&path));
            } else {
                v.push(path);
            }
        }
    }
    v
}

#[test]
fn samples_and_analysis_are_bit_identical_across_layouts_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let o = run(0, &reference, &["--threads", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = reference.join("long_run.h5");

    for (ranks, threads) in [(1, 1), (3, 1), (2, 2)] {
        let out = tmp.path().join(format!("mpi-{ranks}x{threads}"));
        let o = run(ranks, &out, &["--threads", &threads.to_string()]);
        assert!(o.status.success(), "{ranks}x{threads}: {}", String::from_utf8_lossy(&o.stderr));
        assert_same(&r, &out.join("long_run.h5"), &format!("{ranks} ranks x {threads} threads"));
    }

    // SIGTERM: blocks written so far are kept, exit 75; resume on 2 ranks.
    let out = tmp.path().join("term");
    let o = interrupted(&out, "-TERM", &[]);
    assert_eq!(o.status.code(), Some(75), "SIGTERM exits 75");
    assert!(!out.join("long_run.h5").exists(), "no study file before the run is complete");
    let o = run(2, &out, &["--threads", "1"]);
    assert_eq!(o.status.code(), Some(2), "without --resume the saved samples are refused");
    let o = run(2, &out, &["--threads", "1", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&r, &out.join("long_run.h5"), "SIGTERM then resume on 2 ranks");

    // SIGKILL: no chance to clean up (a .partial file may remain); resume on 1 × 1.
    let out = tmp.path().join("kill");
    let o = interrupted(&out, "-KILL", &[]);
    assert_eq!(o.status.code(), None, "killed by the signal");
    let o = run(0, &out, &["--threads", "1", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_same(&r, &out.join("long_run.h5"), "SIGKILL then resume on 1 thread");
    assert!(walkdir(&out).iter().all(|p| !p.to_string_lossy().ends_with(".partial") || p.to_string_lossy().contains("samples")), "no stray files");

    // A finished study re-submitted with --resume does nothing.
    let o = run(0, &out, &["--resume"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already complete"));

    // --force over the finished study, stopped partway: the earlier results
    // file went with its samples, so --resume continues the new run (it does
    // not report the earlier study as complete) to the same bits.
    let o = interrupted(&out, "-TERM", &["--force"]);
    assert_eq!(o.status.code(), Some(75), "SIGTERM exits 75");
    assert!(!out.join("long_run.h5").exists(), "--force removed the earlier results file");
    let o = run(0, &out, &["--threads", "2", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("already complete"), "the interrupted --force run was taken for complete");
    assert_same(&r, &out.join("long_run.h5"), "--force stopped, then resumed");
}

/// True when the results file holds an `analysis` group.
fn analysed(file: &Path) -> bool {
    hdf5::File::open(file).unwrap().link_exists("analysis")
}

#[test]
fn a_signal_during_the_analysis_stops_it_and_resume_finishes_it() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("an");
    let file = out.join("long_run.h5");
    // The results file appears (renamed into place) just before its analysis
    // starts, which takes over a second at this size.
    let child = command(0, &out, &["--threads", "2"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let t = Instant::now();
    while !file.exists() {
        assert!(t.elapsed() < Duration::from_secs(120), "no results file");
        std::thread::sleep(Duration::from_millis(1));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(75), "{err}");
    assert!(err.contains("stopped by a signal during the analysis; the samples are complete in"), "{err}");
    assert!(!analysed(&file), "a stopped analysis writes nothing");

    // --resume finishes the analysis; a signal then stops it again, the same way.
    let mut child = command(0, &out, &["--resume"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("finishing the analysis"), "{first}");
    Command::new("kill").args(["-USR1", &child.id().to_string()]).status().unwrap();
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    assert_eq!(child.wait().unwrap().code(), Some(75), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("during the analysis")), "{rest:?}");
    assert!(!analysed(&file));

    let o = run(0, &out, &["--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(analysed(&file), "the resumed run stored the analysis");
}
