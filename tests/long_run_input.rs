//! Bad input to `gansde long-run` and `gansde analyze`: one `error: ` line,
//! exit code 2, and nothing left behind (no long_run.h5, no samples/ folder,
//! no lock, no output folder created); the output-folder rules (--force,
//! --resume, an earlier run's samples); and analyze on files it cannot read.
//!
//! Every test runs the real binary in its own temporary folder. Long-run cases
//! start from the shipped jobs/long-run-lq.toml shrunk by `--set` (4 chains,
//! 4 SDE paths, T = 10, burn-in 2, blocks of 2): a run that is accepted takes
//! well under a second.
//!

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gansde");

mod common;
use common::NO_HDF5_LOCKING;

/// Shrinks jobs/long-run-lq.toml to a run of well under a second; later
/// `--set`s of the same key win.
const TINY: &[&str] = &[
    "long_run.chains=4",
    "long_run.sde_paths=4",
    "sga.horizon=10.0",
    "long_run.burn_in=2.0",
    "long_run.block=2",
    // The shipped lags reach 8 = T − burn_in, too long for T = 10.
    "long_run.lags=[0.5, 1.0]",
];

/// No command here should take this long; an accepted bad job that starts a
/// huge run is killed instead of hanging the suite.
const TIMEOUT: Duration = Duration::from_secs(120);

fn manifest(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The shipped long-run job's text.
fn shipped_text() -> String {
    std::fs::read_to_string(manifest("jobs/long-run-lq.toml")).unwrap()
}

/// The shipped long-run job without its `[long_run.scheduler]` table (if
/// any), so that the scheduler cases below control that table themselves.
fn long_run_text() -> String {
    let text = shipped_text();
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            skipping = t.starts_with("[long_run.scheduler]");
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(out.contains("[long_run]") && !out.contains("scheduler"), "unexpected shape of jobs/long-run-lq.toml:\n{out}");
    out
}

/// Runs `cmd`, killing it after [`TIMEOUT`].
fn output(mut cmd: Command) -> Output {
    cmd.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1);
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cannot run the gansde binary");
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gansde did not finish within {TIMEOUT:?} (was bad input accepted and a long run started?): {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

/// A temporary folder holding `job.toml`, with `out/` as the output folder.
struct Case {
    dir: tempfile::TempDir,
    job: PathBuf,
}

impl Case {
    fn new(job_text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(&job, job_text).unwrap();
        Case { dir, job }
    }

    /// The shipped long-run job.
    fn long_run() -> Self {
        Case::new(&long_run_text())
    }

    /// The shipped long-run job with `from` replaced by `to` (`from` must occur once).
    fn long_run_with(from: &str, to: &str) -> Self {
        Case::new(&edit(&long_run_text(), from, to))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self) -> PathBuf {
        self.path("out")
    }

    fn results(&self) -> PathBuf {
        self.out().join("long_run.h5")
    }

    fn samples(&self) -> PathBuf {
        self.out().join("samples")
    }

    /// `gansde <args...>` in the case folder.
    fn gansde(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.args(args).current_dir(self.dir.path());
        output(c)
    }

    /// `gansde <sub> <job> --out out --quiet <extra...>`, no overrides; one
    /// thread unless `extra` gives --threads (the cores are shared).
    fn sub_raw(&self, sub: &str, job: &Path, extra: &[&str]) -> Output {
        let mut c = Command::new(BIN);
        c.arg(sub).arg(job).arg("--out").arg(self.out()).arg("--quiet");
        if !extra.contains(&"--threads") {
            c.args(["--threads", "1"]);
        }
        c.args(extra).current_dir(self.dir.path());
        output(c)
    }

    /// `gansde long-run job.toml` shrunk by [`TINY`], then `extra` (whose
    /// `--set`s override the tiny ones).
    fn run(&self, extra: &[&str]) -> Output {
        let mut args: Vec<&str> = Vec::new();
        for s in TINY {
            args.extend(["--set", s]);
        }
        args.extend(extra);
        self.sub_raw("long-run", &self.job, &args)
    }

    /// `run` with `--set` for each of `sets`.
    fn run_set(&self, sets: &[&str]) -> Output {
        let mut extra = Vec::new();
        for s in sets {
            extra.extend(["--set", *s]);
        }
        self.run(&extra)
    }

    /// A tiny run that must succeed.
    fn run_ok(&self, extra: &[&str]) -> Output {
        let out = self.run(extra);
        assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(self.results().is_file());
        assert!(self.samples().is_dir());
        out
    }

    /// Bad input before anything is written: exit 2, one `error: ` line with
    /// every fragment, and the output folder never created (so no results
    /// file, samples or lock either). Returns the message.
    fn expect_bad_input(&self, out: &Output, fragments: &[&str]) -> String {
        let msg = expect_one_error(out, 2, fragments);
        assert!(!self.out().exists(), "bad input left {:?} behind: {:?}", self.out(), listing(&self.out()));
        msg
    }
}

/// `text` with the single occurrence of `from` replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "'{from}' must occur exactly once in the job text");
    text.replacen(from, to, 1)
}

/// Every file under `dir`, relative, sorted, with its size (empty when `dir` does not exist).
fn listing(dir: &Path) -> Vec<(String, u64)> {
    fn walk(root: &Path, dir: &Path, acc: &mut Vec<(String, u64)>) {
        let Ok(rd) = std::fs::read_dir(dir) else { return };
        for e in rd {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                acc.push((format!("{rel}/"), 0));
                walk(root, &p, acc);
            } else {
                acc.push((rel, e.metadata().unwrap().len()));
            }
        }
    }
    let mut acc = Vec::new();
    walk(dir, dir, &mut acc);
    acc.sort();
    acc
}

/// No lock file (nor a private lock claim) left in `dir`.
fn assert_no_lock(dir: &Path) {
    let left: Vec<_> = listing(dir).into_iter().filter(|(n, _)| n.contains(".gansde.lock")).collect();
    assert!(left.is_empty(), "lock files left behind: {left:?}");
}

/// Asserts the exit code and that stderr is exactly one line, starting with
/// "error: " and containing every fragment; returns that line.
fn expect_one_error(out: &Output, code: i32, fragments: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr:\n{stderr}\nstdout:\n{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr must be one line, got:\n{stderr}");
    let msg = lines[0];
    assert!(msg.starts_with("error: "), "message must start with 'error: ': {msg}");
    for f in fragments {
        assert!(msg.contains(f), "message lacks '{f}':\n{msg}");
    }
    msg.to_string()
}

/// The job's key named in a one-line message and the exit code, for table-driven cases.
fn bad(sets: &[&str], fragments: &[&str]) -> String {
    let c = Case::long_run();
    let out = c.run_set(sets);
    let mut all = vec!["job.toml"];
    all.extend(fragments);
    c.expect_bad_input(&out, &all)
}

// ------------------------------------------------------------ a valid run

#[test]
fn tiny_job_runs() {
    let c = Case::long_run();
    let out = c.run_ok(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "stderr:\n{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("results:"));
    assert_no_lock(&c.out());
    let f = hdf5::File::open(c.results()).unwrap();
    let study = f.attr("study").unwrap().read_scalar::<hdf5::types::VarLenUnicode>().unwrap();
    assert_eq!(study.as_str(), "long-run");
}

#[test]
fn a_reader_that_goes_away_is_not_a_failure() {
    // `gansde long-run job.toml | head -2`: the report's reader closes the pipe
    // before the report is printed; the study is complete and exits 0, without a panic.
    let c = Case::long_run();
    let mut cmd = Command::new(BIN);
    cmd.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1).arg("long-run").arg(&c.job).arg("--out").arg(c.out()).args(["--quiet", "--threads", "1"]);
    for s in TINY {
        cmd.args(["--set", s]);
    }
    let mut child = cmd.current_dir(c.dir.path()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains("panicked") && stderr.trim().is_empty(), "stderr:\n{stderr}");
    assert!(c.results().is_file() && c.out().join("plots").is_dir(), "results and plots are written");
}

#[test]
fn shipped_job_with_its_scheduler_runs_tiny() {
    let c = Case::new(&shipped_text());
    let out = c.run_ok(&[]);
    assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
}

// ----------------------------------------------------- [long_run] counts

#[test]
fn a_table_given_a_plain_value_names_the_table_not_a_rust_type() {
    for (set, table) in [("long_run=1", "long_run"), ("long_run.scheduler=false", "long_run.scheduler")] {
        let msg = bad(&[set], &["expected a table", &format!("`{table}`"), "(value from --set)"]);
        assert!(!msg.contains("struct") && !msg.contains("Raw"), "{msg}");
    }
}

#[test]
fn chains_below_two() {
    for v in ["1", "0", "-3"] {
        bad(&[&format!("long_run.chains={v}")], &["long_run.chains", &format!("{v} is not allowed"), "need at least 2 SGA chains"]);
    }
}

#[test]
fn sde_paths_below_two() {
    for v in ["1", "0"] {
        bad(&[&format!("long_run.sde_paths={v}")], &["long_run.sde_paths", &format!("{v} is not allowed"), "need at least 2 paths"]);
    }
}

#[test]
fn sde_paths_default_to_chains() {
    // Without sde_paths, chains = 1 is reported once, under chains.
    let c = Case::long_run_with("sde_paths = 1200", "# sde_paths unset");
    let mut args = Vec::new();
    for s in TINY.iter().filter(|s| !s.starts_with("long_run.sde_paths")).chain(&["long_run.chains=1"]) {
        args.extend(["--set", *s]);
    }
    let out = c.sub_raw("long-run", &c.job, &args);
    let msg = c.expect_bad_input(&out, &["long_run.chains", "1 is not allowed"]);
    assert!(!msg.contains("sde_paths"), "{msg}");
}

#[test]
fn block_below_one() {
    for v in ["0", "-2"] {
        bad(&[&format!("long_run.block={v}")], &["long_run.block", &format!("{v} is not a positive number of paths")]);
    }
}

#[test]
fn bins_out_of_range() {
    for v in ["1", "0", "1001"] {
        bad(&[&format!("long_run.bins={v}")], &["long_run.bins", &format!("{v} is not allowed"), "need 2..=1000 histogram bins", "(value from --set)"]);
    }
    // The same value in the file is not attributed to --set.
    let c = Case::long_run_with("bins = 12", "bins = 1");
    let msg = c.expect_bad_input(&c.run(&[]), &["long_run.bins", "1 is not allowed"]);
    assert!(!msg.contains("--set"), "{msg}");
}

#[test]
fn observe_every_below_one() {
    for v in ["0", "-1"] {
        bad(&[&format!("long_run.observe_every={v}")], &["long_run.observe_every", &format!("{v} is not a positive number of records")]);
    }
}

#[test]
fn chains_too_many_for_the_stream_layout() {
    bad(&["long_run.chains=2000000000000", "long_run.sde_paths=4"], &["long_run.chains", "is too many for the stream layout (at most 2^40 paths)"]);
}

#[test]
fn sde_paths_too_many_for_the_stream_layout() {
    bad(&["long_run.sde_paths=2000000000000"], &["long_run.sde_paths", "2000000000000", "too many"]);
}

#[test]
fn sizes_beyond_the_limits_are_bad_input_not_a_crash() {
    // Each once panicked, aborted on an allocation or hung.
    bad(&["sga.horizon=1e15"], &["sga.horizon, sga.eta", "T/η = 1.000e16 steps (T = 1e15, η = 0.1); at most 2^40"]);
    bad(&["sga.eta=[1e-12]"], &["sga.horizon, sga.eta", "(T = 10, η = 1e-12)"]);
    bad(&["sga.horizon=1e300"], &["sga.horizon", "at most 2^40 ≈ 1.1e12 steps per chain"]);
    bad(&["sga.horizon=1e11", "long_run.record_every=0.1"], &["long_run.record_every", "records per path (T / record_every + 1) is beyond the limit of 10^8"]);
    bad(&["long_run.block=1000000000000000000"], &["long_run.block", "paths per block is beyond the stream layout"]);
    bad(&["long_run.trace=\"hutchinson\"", "long_run.probes=1000000000000"], &["long_run.probes", "beyond the limit of 10000"]);
    bad(
        &["long_run.scheduler={epsilon = 0.1, delta = 0.1, window = 1000000000000}"],
        &["long_run.scheduler.window", "1000000000000 steps is longer than the run"],
    );
    bad(&["data.latent.count=100000000000"], &["data.latent.count", "beyond the limit of 10^7"]);
    bad(&["data.latent.dim=1000000000000"], &["data.latent.dim", "beyond the limit of 100000 coordinates"]);
    bad(
        &["data.latent={draw = \"normal\", dim = 100000, count = 10000}"],
        &["data.latent.count", "10000 samples × 100000 coordinates is beyond the limit of 10^8 values"],
    );
    // The limit applies to probes that are used; unused ones are said to be unused.
    bad(&["long_run.trace=\"exact\"", "long_run.probes=20000"], &["long_run.probes", "only used with trace = \"hutchinson\""]);
}

// --------------------------------------------------- record_every, burn_in

#[test]
fn record_every_not_whole_eta_steps() {
    // η = 0.1.
    for v in ["0.25", "0.05", "0", "-0.5", "nan", "inf"] {
        let shown = match v {
            "nan" => "NaN",
            "0" => "0",
            o => o,
        };
        bad(&[&format!("long_run.record_every={v}")], &["long_run.record_every", &format!("{shown} is not a positive whole number of η-steps"), "(η = 0.1)"]);
    }
}

#[test]
fn record_every_not_dividing_horizon() {
    // 3 and 30 η-steps do not divide the 100 steps to T = 10.
    for v in ["0.3", "3.0"] {
        let shown = v.trim_end_matches(".0");
        bad(&[&format!("long_run.record_every={v}")], &["long_run.record_every", &format!("{shown} does not divide the horizon T = 10")]);
    }
}

#[test]
fn burn_in_out_of_range() {
    for (v, shown) in [("-1.0", "-1"), ("10.0", "10"), ("12.5", "12.5"), ("nan", "NaN")] {
        bad(&[&format!("long_run.burn_in={v}")], &["long_run.burn_in", &format!("{shown} must lie in [0, T = 10)")]);
    }
}

#[test]
fn burn_in_leaving_fewer_than_two_records() {
    // Records every 0.5 to T = 10: after t = 9.8 only the record at t = 10 is left.
    bad(&["long_run.burn_in=9.8"], &["long_run.burn_in", "leaves fewer than 2 records after the burn-in", "lower it or raise sga.horizon"]);
}

#[test]
fn burn_in_leaving_fewer_than_two_records_names_the_value() {
    bad(&["long_run.burn_in=9.8"], &["long_run.burn_in", "9.8", "fewer than 2 records"]);
}

// ------------------------------------------------------------ projections

#[test]
fn projection_unknown() {
    bad(&["long_run.projections=[\"foo\"]"], &["long_run.projections", "'foo' is not a coordinate (thetaK, omegaK or uK, 1-based)"]);
    bad(&["long_run.projections=[\"theta3\"]"], &["long_run.projections", "'theta3' does not exist: theta has coordinates 1..=2"]);
}

#[test]
fn projection_not_linear() {
    for f in ["theta1*omega1", "norm2", "loss"] {
        bad(&[&format!("long_run.projections=[\"{f}\"]")], &["long_run.projections", &format!("\"{f}\" is not linear"), "or 4 weights"]);
    }
}

#[test]
fn projection_weight_vector_of_wrong_length() {
    for v in ["[1.0, 0.0]", "[1.0, 0.0, 0.0, 0.0, 0.0]", "[0.0, 0.0, 0.0, 0.0]", "[1.0, \"a\", 0.0, 0.0]"] {
        bad(
            &[&format!("long_run.projections=[\"theta1\", {v}]")],
            &["long_run.projections", "it needs 4 finite numbers, not all zero (one per coordinate of u)"],
        );
    }
}

#[test]
fn projection_weight_vector_of_wrong_length_names_it() {
    let msg = bad(&["long_run.projections=[\"theta1\", [1.0, 0.0]]"], &["long_run.projections", "4"]);
    assert!(msg.contains("[1") || msg.contains("has 2") || msg.contains("2 entries") || msg.contains("got 2"), "the offending vector is not named: {msg}");
}

#[test]
fn projection_neither_name_nor_vector() {
    bad(&["long_run.projections=[1.5]"], &["long_run.projections", "1.5 is neither a coordinate name nor a weight vector"]);
}

#[test]
fn projection_list_empty() {
    bad(&["long_run.projections=[]"], &["long_run.projections", "name at least one projection"]);
}

#[test]
fn projection_listed_twice() {
    bad(&["long_run.projections=[\"theta1\", \"omega1\", \"theta1\"]"], &["long_run.projections", "\"theta1\" is listed twice"]);
}

#[test]
fn projection_repeated_under_another_name_is_rejected() {
    // u1 is theta1, and [1, 0, 0, 0] is theta1's weight vector.
    bad(&["long_run.projections=[\"theta1\", \"u1\"]"], &["long_run.projections", "\"u1\""]);
    bad(&["long_run.projections=[\"theta1\", [1, 0, 0, 0]]"], &["long_run.projections", "[1,0,0,0]"]);
}

#[test]
fn projection_repeated_under_another_name_names_both() {
    let msg = bad(&["long_run.projections=[\"theta1\", \"u1\"]"], &["long_run.projections", "\"u1\"", "\"theta1\""]);
    assert!(!msg.contains("listed twice"), "{msg}");
}

// ------------------------------------------------------------------- lags

#[test]
fn lag_not_a_multiple_of_record_every() {
    for (v, shown) in [("0.75", "0.75"), ("0.25", "0.25"), ("0.0", "0"), ("-0.5", "-0.5")] {
        bad(&[&format!("long_run.lags=[0.5, {v}]")], &["long_run.lags", &format!("s = {shown} is not a positive multiple of record_every = 0.5")]);
    }
}

#[test]
fn lag_too_long() {
    // Stationary records from t = 2 to T = 10: a span of 8.
    for (v, shown) in [("8.0", "8"), ("100.0", "100")] {
        bad(&[&format!("long_run.lags=[0.5, {v}]")], &["long_run.lags", &format!("s = {shown} is not shorter than the stationary span 8")]);
    }
}

#[test]
fn lag_too_long_with_burn_in_between_records() {
    let msg = bad(&["long_run.burn_in=2.2", "long_run.lags=[0.5, 7.5]"], &["long_run.lags", "s = 7.5", "7.5"]);
    assert!(!msg.contains("(T − burn_in)") || msg.contains("2.5"), "the span is not T − burn_in = 7.8 here: {msg}");
}

#[test]
fn lag_list_empty() {
    bad(&["long_run.lags=[]"], &["long_run.lags", "give at least one lag"]);
}

// ------------------------------------------------------------ trace, probes

#[test]
fn trace_unknown() {
    for v in ["foo", "Exact"] {
        bad(&[&format!("long_run.trace=\"{v}\"")], &["long_run.trace", &format!("unknown method \"{v}\""), "valid: \"auto\", \"exact\", \"hutchinson\""]);
    }
}

#[test]
fn probes_with_exact_trace() {
    bad(&["long_run.trace=\"exact\"", "long_run.probes=4"], &["long_run.probes", "only used with trace = \"hutchinson\""]);
}

#[test]
fn probes_below_one() {
    bad(&["long_run.trace=\"hutchinson\"", "long_run.probes=0"], &["long_run.probes", "0 is not a positive number of probe vectors"]);
}

// -------------------------------------------------------------- scheduler

const SCHED: [&str; 2] = ["long_run.scheduler.epsilon=0.1", "long_run.scheduler.delta=0.5"];

fn sched(extra: &[&str]) -> Vec<String> {
    SCHED.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn bad_sched(extra: &[&str], fragments: &[&str]) -> String {
    let sets = sched(extra);
    bad(&sets.iter().map(String::as_str).collect::<Vec<_>>(), fragments)
}

#[test]
fn scheduler_valid_runs() {
    let c = Case::long_run();
    let sets = sched(&[]);
    let mut extra = Vec::new();
    for s in &sets {
        extra.extend(["--set", s.as_str()]);
    }
    c.run_ok(&extra);
}

#[test]
fn scheduler_without_sml() {
    bad_sched(&["sga.schemes=[\"alt\"]"], &["long_run.scheduler", "the Remark 4 scheduler drives SML chains", "add \"sml\" to sga.schemes"]);
}

#[test]
fn scheduler_epsilon_bad() {
    for (v, shown) in [("0.0", "0"), ("-1.0", "-1"), ("nan", "NaN"), ("inf", "inf")] {
        bad_sched(&[&format!("long_run.scheduler.epsilon={v}")], &["long_run.scheduler.epsilon", &format!("{shown} must be a positive tolerance")]);
    }
}

#[test]
fn scheduler_delta_bad() {
    for (v, shown) in [("0.0", "0"), ("1.0", "1"), ("1.5", "1.5"), ("-0.1", "-0.1"), ("nan", "NaN")] {
        bad_sched(&[&format!("long_run.scheduler.delta={v}")], &["long_run.scheduler.delta", &format!("{shown} must lie strictly between 0 and 1")]);
    }
}

#[test]
fn scheduler_window_bad() {
    for v in ["0", "-4"] {
        bad_sched(&[&format!("long_run.scheduler.window={v}")], &["long_run.scheduler.window", &format!("{v} is not a positive number of steps")]);
    }
}

#[test]
fn scheduler_with_batch_one() {
    bad_sched(&["sga.batch=1"], &["long_run.scheduler", "needs sga.batch ≥ 2", "B = 1"]);
}

#[test]
fn scheduler_missing_delta() {
    bad(&["long_run.scheduler.epsilon=0.1"], &["missing key `delta`", "long_run.scheduler"]);
    let text = format!("{}\n[long_run.scheduler]\nepsilon = 0.1\n", long_run_text());
    let c = Case::new(&text);
    let out = c.sub_raw("long-run", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", "[long_run.scheduler]", "missing key `delta`"]);
}

#[test]
fn scheduler_unknown_key_in_file() {
    let text = format!("{}\n[long_run.scheduler]\nepsilon = 0.1\ndelta = 0.5\nwindw = 2\n", long_run_text());
    let line = text.lines().position(|l| l == "windw = 2").unwrap() + 1;
    let c = Case::new(&text);
    let out = c.sub_raw("long-run", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", &format!("line {line}"), "key long_run.scheduler.windw", "unknown key `windw`", "`window`"]);
}

// ---------------------------------------------------- η, integrator, keys

#[test]
fn several_learning_rates() {
    bad(&["sga.eta=[0.1, 0.05]"], &["sga.eta", "a long-run study uses one learning rate; got 2", "eta = [0.1]"]);
}

#[test]
fn richardson_integrator() {
    bad(&["sde.integrator=\"richardson\""], &["sde.integrator", "a long-run study stores sample paths", "\"euler\"", "\"exact\""]);
}

#[test]
fn unknown_key_in_long_run_table() {
    let c = Case::long_run_with("chains = 1200 ", "chainz = 3\nchains = 1200 ");
    let line = std::fs::read_to_string(&c.job).unwrap().lines().position(|l| l == "chainz = 3").unwrap() + 1;
    // Without overrides the message carries the line.
    let out = c.sub_raw("long-run", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", &format!("line {line}"), "key long_run.chainz", "unknown key `chainz`", "valid keys here:", "`chains`"]);
}

#[test]
fn unknown_key_in_long_run_via_set() {
    bad(&["long_run.chainz=3"], &["unknown key `chainz`", "valid keys here:", "`chains`", "long_run"]);
}

#[test]
fn wrong_type_in_long_run_table() {
    let c = Case::long_run_with("chains = 1200 ", "chains = 2.5 ");
    let out = c.sub_raw("long-run", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", "key long_run.chains", "expected an integer"]);
}

#[test]
fn missing_required_key_in_long_run_table() {
    let c = Case::long_run_with("burn_in = 20.0 ", "# no burn_in ");
    let out = c.sub_raw("long-run", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", "[long_run]", "missing key `burn_in`"]);
}

// ------------------------------------------------------ which subcommand

#[test]
fn weak_error_job_given_to_long_run() {
    let c = Case::new(&std::fs::read_to_string(manifest("jobs/lq.toml")).unwrap());
    let lq = c.path("lq.toml");
    std::fs::rename(&c.job, &lq).unwrap();
    let out = c.sub_raw("long-run", &lq, &[]);
    c.expect_bad_input(&out, &["lq.toml", "has no [long_run] table", "not a long-run job", "'gansde weak-error'"]);
}

#[test]
fn long_run_job_given_to_weak_error() {
    let c = Case::long_run();
    let out = c.sub_raw("weak-error", &c.job, &[]);
    c.expect_bad_input(&out, &["job.toml", "has no [estimate] table", "not a weak-error job", "'gansde long-run'"]);
}

#[test]
fn job_with_neither_estimate_nor_long_run() {
    let text = long_run_text();
    let cut = text.find("[long_run]").unwrap();
    let c = Case::new(&text[..cut]);
    for sub in ["long-run", "weak-error"] {
        let out = c.sub_raw(sub, &c.job, &[]);
        c.expect_bad_input(&out, &["job.toml", "missing: give [estimate] for a weak-error study or [long_run] for a long-run study"]);
    }
}

// ------------------------------------------------------------------- flags

#[test]
fn checkpoint_every_with_long_run() {
    let c = Case::long_run();
    let out = c.run(&["--checkpoint-every", "5"]);
    c.expect_bad_input(&out, &["--checkpoint-every", "not used by long-run"]);
}

#[test]
fn skip_analysis_with_weak_error() {
    let c = Case::new(&std::fs::read_to_string(manifest("jobs/lq.toml")).unwrap());
    let out = c.sub_raw("weak-error", &c.job, &["--skip-analysis"]);
    c.expect_bad_input(&out, &["--skip-analysis", "only used by long-run"]);
}

#[test]
fn threads_zero_with_long_run() {
    let c = Case::long_run();
    let out = c.run(&["--threads", "0"]);
    c.expect_bad_input(&out, &["--threads", "0 is not allowed"]);
}

#[test]
fn bad_flag_value_points_to_long_run_help() {
    let c = Case::long_run();
    let out = c.run(&["--threads", "abc"]);
    c.expect_bad_input(&out, &["invalid value 'abc' for '--threads <THREADS>'", "see 'gansde long-run --help'"]);
}

// ------------------------------------------------------------ output rules

#[test]
fn existing_results_file_needs_force() {
    let c = Case::long_run();
    std::fs::create_dir_all(c.out()).unwrap();
    std::fs::write(c.results(), b"earlier results").unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["results file", "long_run.h5", "exists", "--force", "--out"]);
    assert_eq!(std::fs::read(c.results()).unwrap(), b"earlier results", "the results file was touched");
    assert_eq!(listing(&c.out()), vec![("long_run.h5".to_string(), 15)], "the refused run wrote into the folder");
}

#[test]
fn existing_run_needs_force_and_is_left_alone() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let before = listing(&c.out());
    let bytes = std::fs::read(c.results()).unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["results file", "long_run.h5", "exists", "--force"]);
    assert_eq!(std::fs::read(c.results()).unwrap(), bytes, "the results file was touched");
    assert_eq!(listing(&c.out()), before, "the refused run changed the folder");
}

#[test]
fn samples_of_an_earlier_run_need_resume_or_force() {
    let c = Case::long_run();
    c.run_ok(&[]);
    // As if the earlier run had stopped before writing its results file.
    std::fs::remove_file(c.results()).unwrap();
    let before = listing(&c.out());
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["samples", "holds samples of an earlier run", "--resume", "--force"]);
    assert_eq!(listing(&c.out()), before, "the refused run changed the folder");
    assert!(!c.results().exists());

    // --resume finishes it from the stored blocks.
    let out = c.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.results().is_file());
    assert_no_lock(&c.out());
}

#[test]
fn an_empty_samples_folder_is_no_earlier_run() {
    // What a run that diverged at once under --resume leaves: folders, no blocks.
    let c = Case::long_run();
    std::fs::create_dir_all(c.samples().join("sga_alt")).unwrap();
    c.run_ok(&[]);
}

#[test]
fn samples_of_an_earlier_run_with_force_start_over() {
    let c = Case::long_run();
    c.run_ok(&[]);
    std::fs::remove_file(c.results()).unwrap();
    // Blocks no run of this job writes (a bigger earlier run, a half-written
    // one) must go; a user's own files stay.
    let kind = c.samples().join("sga_alt");
    std::fs::copy(kind.join("block-000000.h5"), kind.join("block-000999.h5")).unwrap();
    std::fs::write(kind.join("block-000998.h5.partial"), b"x").unwrap();
    std::fs::write(c.samples().join("notes.txt"), b"mine").unwrap();
    std::fs::write(kind.join("mine.h5"), b"mine").unwrap();
    std::fs::create_dir_all(c.samples().join("old")).unwrap();
    std::fs::write(c.samples().join("old/block-000001.h5"), b"mine").unwrap();
    let out = c.run(&["--force"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.results().is_file());
    assert!(!kind.join("block-000999.h5").exists(), "--force kept an earlier block");
    assert!(!kind.join("block-000998.h5.partial").exists(), "--force kept a half-written block");
    assert!(kind.join("block-000000.h5").is_file(), "the new run's block is missing");
    assert_eq!(std::fs::read(c.samples().join("notes.txt")).unwrap(), b"mine", "--force removed a user's file");
    assert_eq!(std::fs::read(kind.join("mine.h5")).unwrap(), b"mine", "--force removed a user's file");
    // A folder that is not one of gansde's kinds is the user's, block names or not.
    assert!(c.samples().join("old/block-000001.h5").is_file(), "--force removed a user's copy of a block");
    assert_no_lock(&c.out());
}

#[test]
fn blocks_in_a_folder_that_is_no_kind_are_no_earlier_run() {
    let c = Case::long_run();
    std::fs::create_dir_all(c.samples().join("backup")).unwrap();
    std::fs::write(c.samples().join("backup/block-000000.h5"), b"mine").unwrap();
    c.run_ok(&[]);
    assert_eq!(std::fs::read(c.samples().join("backup/block-000000.h5")).unwrap(), b"mine");
}

#[test]
fn a_kind_folder_that_is_a_link_or_a_file_is_refused_before_any_work() {
    // A link would lead --force, and the writers, into another study's store.
    let other = Case::long_run();
    other.run_ok(&[]);
    let theirs = other.samples().join("sde_alt");
    let before = listing(&theirs);
    let c = Case::long_run();
    std::fs::create_dir_all(c.samples()).unwrap();
    std::os::unix::fs::symlink(&theirs, c.samples().join("sde_alt")).unwrap();
    for flags in [&[][..], &["--force"][..]] {
        let out = c.run(flags);
        expect_one_error(&out, 2, &["samples/sde_alt", "is a file or a link", "a folder of its own"]);
        assert_eq!(listing(&theirs), before, "{flags:?} touched the other study's blocks");
        assert!(!c.results().exists());
    }
    std::fs::remove_file(c.samples().join("sde_alt")).unwrap();
    std::fs::write(c.samples().join("sde_sml"), b"x").unwrap();
    let out = c.run(&["--force"]);
    expect_one_error(&out, 2, &["samples/sde_sml", "is a file or a link"]);
    assert!(!c.results().exists());
}

#[test]
fn force_removes_the_earlier_plots_with_the_earlier_results() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let plots = c.out().join("plots");
    std::fs::write(plots.join("mine.png"), b"mine").unwrap();
    assert!(plots.join("beta_sde_alt.png").is_file());
    // A --force run that diverges leaves neither the earlier results nor their plots.
    let out = c.run(&["--force", "--set", "sga.init=[1e-4, 0.0, 0.0, 0.0]", "--set", "divergence.bound=1e-3"]);
    assert_eq!(out.status.code(), Some(3), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!c.results().exists());
    assert!(!plots.join("beta_sde_alt.png").exists(), "the earlier study's plots outlived it");
    assert_eq!(std::fs::read(plots.join("mine.png")).unwrap(), b"mine");
}

#[test]
fn force_starts_over() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let first = std::fs::read(c.samples().join("sga_alt/block-000000.h5")).unwrap();
    let out = c.run(&["--force", "--set", "seed=7"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(c.samples().join("sga_alt/block-000000.h5")).unwrap(), first, "--force kept the earlier samples");
    assert_no_lock(&c.out());
    let f = hdf5::File::open(c.results()).unwrap();
    assert_eq!(f.attr("seed").unwrap().read_scalar::<u64>().unwrap(), 7, "the results file is not the new run's");
    assert!(f.group("analysis").is_ok());
}

#[test]
fn force_with_bad_input_touches_nothing() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let before = listing(&c.out());
    let bytes = std::fs::read(c.results()).unwrap();
    let out = c.run(&["--force", "--set", "long_run.chains=1"]);
    expect_one_error(&out, 2, &["long_run.chains", "1 is not allowed"]);
    assert_eq!(std::fs::read(c.results()).unwrap(), bytes);
    assert_eq!(listing(&c.out()), before);
}

#[test]
fn plots_folder_is_a_file() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let plots = c.out().join("plots");
    std::fs::remove_dir_all(&plots).unwrap();
    std::fs::write(&plots, b"mine").unwrap();
    // gansde plot names the folder it was not given by flag as such.
    let out = c.gansde(&["plot", c.results().to_str().unwrap()]);
    let msg = expect_one_error(&out, 2, &["the plots folder", "is a file, not a folder"]);
    assert!(!msg.contains("--out"), "{msg}");
    // An --out folder that cannot be made (under a file) is a bad flag: exit 2, like a study's --out.
    let under = plots.join("sub");
    let out = c.gansde(&["plot", c.results().to_str().unwrap(), "--out", under.to_str().unwrap()]);
    expect_one_error(&out, 2, &["cannot create the plot folder", "sub"]);
    // A study drawing there warns in words and still ends well.
    let out = c.run(&["--force"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: no plots: cannot create the plot folder"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a file has that name"));
    assert_eq!(std::fs::read(&plots).unwrap(), b"mine");
}

#[test]
fn out_is_a_file() {
    let c = Case::long_run();
    std::fs::write(c.out(), b"not a folder").unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["--out", "is a file, not a folder"]);
    assert_eq!(std::fs::read(c.out()).unwrap(), b"not a folder");
}

#[test]
fn results_name_is_a_folder() {
    let c = Case::long_run();
    std::fs::create_dir_all(c.results()).unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["long_run.h5", "is a folder"]);
    assert!(!c.samples().exists());
    assert_no_lock(&c.out());
}

#[test]
fn samples_name_is_a_file() {
    let c = Case::long_run();
    std::fs::create_dir_all(c.out()).unwrap();
    std::fs::write(c.samples(), b"x").unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["samples", "is a file"]);
    assert_eq!(std::fs::read(c.samples()).unwrap(), b"x");
    assert!(!c.results().exists());
    assert_no_lock(&c.out());
}

#[test]
fn resume_of_another_study_is_refused() {
    let c = Case::long_run();
    c.run_ok(&[]);
    std::fs::remove_file(c.results()).unwrap();
    let before = listing(&c.out());
    let out = c.run(&["--resume", "--set", "seed=5"]);
    expect_one_error(&out, 2, &["samples", "of another study", "--force"]);
    assert_eq!(listing(&c.out()), before);
    assert!(!c.results().exists());
}

#[test]
fn resume_of_a_finished_study_does_nothing() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let bytes = std::fs::read(c.results()).unwrap();
    let out = c.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("study already complete"));
    assert_eq!(std::fs::read(c.results()).unwrap(), bytes);
}

#[test]
fn force_and_resume_together_are_rejected() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let bytes = std::fs::read(c.results()).unwrap();
    let out = c.run(&["--force", "--resume"]);
    expect_one_error(&out, 2, &["--force", "--resume"]);
    assert_eq!(std::fs::read(c.results()).unwrap(), bytes);
}

/// A lock file in `dir` as a run with `pid` on this host leaves it.
fn hold_lock(dir: &Path, pid: u32) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    std::fs::write(dir.join(".gansde.lock"), format!("{} {pid}", host.trim())).unwrap();
}

#[test]
fn a_folder_another_live_run_writes_to_is_refused_and_a_dead_runs_lock_is_taken_over() {
    let c = Case::long_run();
    std::fs::create_dir_all(c.out()).unwrap();
    // This test's own process stands for the live run.
    hold_lock(&c.out(), std::process::id());
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["another gansde run", &format!("pid {}", std::process::id()), "is writing to", "wait for it or choose another --out"]);
    assert!(!c.results().exists() && !c.samples().exists(), "the refused run wrote");
    assert!(c.out().join(".gansde.lock").exists(), "the live run's lock was removed");

    let mut dead = Command::new("true").spawn().unwrap();
    let pid = dead.id();
    dead.wait().unwrap();
    hold_lock(&c.out(), pid);
    c.run_ok(&[]);
    assert_no_lock(&c.out());
}

#[test]
fn plots_into_the_study_folder_and_a_linked_results_file_also_wait_for_the_run() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let link = c.path("link.h5");
    std::os::unix::fs::symlink(c.results(), &link).unwrap();
    hold_lock(&c.out(), std::process::id());
    let bytes = std::fs::read(c.results()).unwrap();
    let results = c.results();
    let inside = c.out().join("plots");
    let nested = c.out().join("new/deeper");
    for args in [
        vec!["plot", results.to_str().unwrap(), "--out", inside.to_str().unwrap()],
        vec!["plot", results.to_str().unwrap(), "--out", nested.to_str().unwrap()],
        vec!["analyze", link.to_str().unwrap()],
        vec!["plot", link.to_str().unwrap()],
    ] {
        let out = c.gansde(&args);
        expect_one_error(&out, 2, &["another gansde run", "wait for it to finish"]);
        assert_eq!(std::fs::read(c.results()).unwrap(), bytes, "{args:?} changed the results file");
    }
    assert!(!nested.exists());
}

#[test]
fn analyze_and_plot_wait_for_a_run_writing_into_the_folder() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let bytes = std::fs::read(c.results()).unwrap();
    hold_lock(&c.out(), std::process::id());
    let results = c.results();
    let results = results.to_str().unwrap();
    for cmd in ["analyze", "plot"] {
        let out = c.gansde(&[cmd, results]);
        expect_one_error(&out, 2, &["another gansde run", "is writing to", "wait for it to finish"]);
        assert_eq!(std::fs::read(c.results()).unwrap(), bytes, "{cmd} changed the results file");
    }
    // Plots drawn elsewhere write nothing beside the results: no lock needed.
    let elsewhere = c.path("elsewhere");
    let out = c.gansde(&["plot", results, "--out", elsewhere.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(c.out().join(".gansde.lock")).unwrap();
    for cmd in ["analyze", "plot"] {
        let out = c.gansde(&[cmd, results]);
        assert_eq!(out.status.code(), Some(0), "{cmd}: stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        assert_no_lock(&c.out());
    }
}

// ----------------------------------------------------------------- analyze

#[test]
fn analyze_missing_file() {
    let c = Case::long_run();
    let out = c.gansde(&["analyze", "nope.h5"]);
    expect_one_error(&out, 2, &["nope.h5", "does not exist"]);
    assert!(!c.path("nope.h5").exists(), "analyze created the file");
}

#[test]
fn analyze_non_hdf5_file() {
    let c = Case::long_run();
    std::fs::write(c.path("fake.h5"), b"not an HDF5 file\n").unwrap();
    let out = c.gansde(&["analyze", "fake.h5"]);
    expect_one_error(&out, 2, &["fake.h5", "cannot open as HDF5"]);
    assert_eq!(std::fs::read(c.path("fake.h5")).unwrap(), b"not an HDF5 file\n");
}

#[test]
fn analyze_empty_file() {
    let c = Case::long_run();
    std::fs::write(c.path("empty.h5"), b"").unwrap();
    let out = c.gansde(&["analyze", "empty.h5"]);
    expect_one_error(&out, 2, &["empty.h5", "cannot open as HDF5"]);
}

#[test]
fn analyze_folder() {
    let c = Case::long_run();
    std::fs::create_dir(c.path("dir.h5")).unwrap();
    let out = c.gansde(&["analyze", "dir.h5"]);
    expect_one_error(&out, 2, &["dir.h5"]);
}

#[test]
fn analyze_hdf5_that_is_not_a_results_file() {
    let c = Case::long_run();
    let p = c.path("other.h5");
    {
        let f = hdf5::File::create(&p).unwrap();
        f.new_dataset::<f64>().shape([3]).create("x").unwrap().write_raw(&[1.0, 2.0, 3.0]).unwrap();
        // Closed (and unlocked) before the binary opens it.
        f.close().unwrap();
    }
    let out = c.gansde(&["analyze", "other.h5"]);
    expect_one_error(&out, 2, &["other.h5", "not a gansde results file"]);
}

#[test]
fn analyze_weak_error_results_file() {
    let c = Case::new(&std::fs::read_to_string(manifest("jobs/lq.toml")).unwrap());
    let we = c.out().join("weak_error.h5");
    let out = c.sub_raw(
        "weak-error",
        &c.job,
        &["--set", "estimate.paths=20", "--set", "estimate.block=10", "--set", "sga.horizon=1.0", "--set", "sga.eta=[0.5, 0.25]", "--set", "sde.max_step=0.25"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&we).unwrap();
    let out = c.gansde(&["analyze", we.to_str().unwrap()]);
    expect_one_error(&out, 2, &["weak_error.h5", "a weak-error results file; analyze reads long-run files"]);
    assert_eq!(std::fs::read(&we).unwrap(), bytes, "analyze changed the weak-error file");
}

#[test]
fn analyze_good_file_twice() {
    let c = Case::long_run();
    c.run_ok(&[]);
    let p = c.results();
    for _ in 0..2 {
        let out = c.gansde(&["analyze", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).trim().is_empty(), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("analysis stored in"));
        let f = hdf5::File::open(&p).expect("the file still opens");
        assert!(f.group("analysis").is_ok());
        assert!(f.dataset("record_time").is_ok());
    }
}

#[test]
fn analyze_after_skip_analysis() {
    let c = Case::long_run();
    let out = c.run_ok(&["--skip-analysis"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("analysis skipped"));
    assert!(hdf5::File::open(c.results()).unwrap().group("analysis").is_err(), "--skip-analysis wrote an analysis");
    let out = c.gansde(&["analyze", c.results().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(hdf5::File::open(c.results()).unwrap().group("analysis").is_ok());
}

#[test]
fn analyze_with_samples_missing() {
    let c = Case::long_run();
    c.run_ok(&[]);
    std::fs::rename(c.samples(), c.out().join("moved")).unwrap();
    let out = c.gansde(&["analyze", c.results().to_str().unwrap()]);
    expect_one_error(&out, 2, &["long_run.h5", "its samples folder", "is not there"]);
    // One block file gone: named, with the way to recompute it.
    std::fs::rename(c.out().join("moved"), c.samples()).unwrap();
    let block = c.samples().join("sga_alt/block-000000.h5");
    std::fs::remove_file(&block).unwrap();
    let out = c.gansde(&["analyze", c.results().to_str().unwrap()]);
    let msg = expect_one_error(
        &out,
        2,
        &[
            "samples/sga_alt path 0 has missing records",
            "sga_alt/block-000000.h5 is missing or incomplete",
            "then run the study again, with the same job and flags plus --resume",
        ],
    );
    assert!(msg.contains(&block.display().to_string()), "{msg}");
}

#[test]
fn a_damaged_block_is_named_by_analyze_and_by_long_run() {
    let c = Case::long_run();
    c.run_ok(&["--skip-analysis"]);
    // Garbage over the middle of a block file's compressed chunks.
    let block = c.samples().join("sga_alt/block-000000.h5");
    let mut bytes = std::fs::read(&block).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 3..2 * n / 3] {
        *b = 0x5a;
    }
    std::fs::write(&block, bytes).unwrap();
    let out = c.gansde(&["analyze", c.results().to_str().unwrap()]);
    let msg = expect_one_error(&out, 2, &["samples/sga_alt path", "sga_alt/block-000000.h5 is damaged", "remove it and"]);
    // long-run --resume finishing the analysis says the same, with the same exit code.
    let out = c.run(&["--resume"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(stderr.lines().next().unwrap_or_default().contains("finishing the analysis"), "{stderr}");
    assert!(last.starts_with("error: cannot analyse ") && last.contains(msg.trim_start_matches("error: ")), "{last}\nvs\n{msg}");
}

// ------------------------------------------------------------ found by a fresh-user review

#[test]
fn divergence_count_is_refused_for_long_run() {
    bad(&["divergence.action=\"count\""], &["divergence.action", "a long-run study stops at the first diverging chain"]);
}

#[test]
fn a_diverged_long_run_gives_advice_it_accepts_and_leaves_no_folder() {
    // The default output folder results/<job name> is made with results/; a
    // diverged run removes both.
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gansde"))
        .current_dir(cwd.path())
        .env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1)
        .args(["long-run", "--quiet", "--set", "divergence.bound=1.6"])
        .arg(manifest("jobs/long-run-lq.toml"))
        .output()
        .unwrap();
    let msg = expect_one_error(&out, 3, &["diverged", "Lower η or raise divergence.bound (a long-run study cannot skip chains)"]);
    assert!(!msg.contains("\"count\""), "long-run refuses divergence.action = \"count\": {msg}");
    let left: Vec<_> = std::fs::read_dir(cwd.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a diverged run left {left:?}");
}

#[test]
fn intervals_from_few_paths_carry_a_note() {
    let c = Case::long_run();
    let out = c.run_ok(&["--set", "long_run.chains=2", "--set", "long_run.sde_paths=40", "--set", "long_run.block=1"]);
    let report = String::from_utf8_lossy(&out.stdout);
    let note = "note: only 2 paths; every SE, interval and z below rests on 2 per-path averages and is rough";
    // Each SGA kind has 2 paths and gets the note; the SDE kinds (40 paths) do not.
    assert!(report.contains(note), "{report}");
    for (i, l) in report.lines().enumerate().filter(|(_, l)| !l.starts_with(' ') && l.contains(" paths")) {
        let next = report.lines().nth(i + 1).unwrap_or_default();
        assert_eq!(next.contains(note), l.ends_with(", 2 paths"), "{l}\n{next}");
    }
}

#[test]
fn probes_with_auto_exact_trace_are_refused() {
    bad(&["long_run.probes=3"], &["long_run.probes", "takes the exact trace for dim u = 4"]);
}

#[test]
fn estimate_set_on_a_long_run_job_says_not_both() {
    bad(&["estimate.paths=20000"], &["long_run", "not both (with --set applied)"]);
}

#[test]
fn analyze_and_plot_on_a_folder_point_to_the_file() {
    let c = Case::long_run();
    c.run_ok(&[]);
    for sub in ["analyze", "plot"] {
        let out = c.gansde(&[sub, "out"]);
        expect_one_error(&out, 2, &["out: is a folder, not a results file", "did you mean out/long_run.h5?"]);
    }
}

#[test]
fn a_run_stopped_during_its_analysis_finishes_it_on_resume() {
    let c = Case::long_run();
    c.run_ok(&[]);
    // As a kill after the study file but before the analysis leaves it: no analysis/ group.
    {
        let f = hdf5::File::open_rw(c.results()).unwrap();
        f.unlink("analysis").unwrap();
    }
    let out = c.run(&["--resume"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("finishing the analysis"));
    assert!(hdf5::File::open(c.results()).unwrap().link_exists("analysis"));
    let out = c.run(&["--resume"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already complete"));
}
