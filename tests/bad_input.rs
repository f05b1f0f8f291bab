//! Bad input gives one message, exit code 2 and nothing written (DESIGN §3,
//! "Errors are for people"); a valid tiny job finishes with exit code 0; a
//! diverging chain stops the study with exit code 3 and no results file.
//!
//! Every test runs the real binary in its own temporary folder with its own
//! small job file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gansde");

mod common;
use common::NO_HDF5_LOCKING;

/// A tiny `lq` job (50 paths, η ∈ {0.5, 0.25}, T = 1): well under a second.
const LQ: &str = r#"seed = 20231

[game]
model = "lq"
A = [[1.0, 0.2], [0.2, 0.6]]
C = [[0.9, -0.4], [0.3, 0.7]]
D = [[0.8, -0.1], [-0.1, 0.5]]

[data.latent]
draw = "normal"
count = 16
mean = [0.3, 0.15]
var = [1.0, 0.25]

[data.real]
draw = "normal"
count = 12
mean = [-0.14, -0.26]
var = [0.31, 1.08]

[sga]
schemes = ["alt", "sml"]
batch = 4
eta = [0.5, 0.25]
horizon = 1.0
init = [1.0, -0.5, 0.5, 1.0]

[sde]
integrator = "richardson"
substeps = 1
noise = "block"
alt_drift = "second-order"
sml_drift = "first-order"

[estimate]
paths = 50
block = 25
functions = ["theta1", "norm2", "theta1*omega1"]
confidence = 0.95
"#;

/// A tiny `tanh-wgan` job reading real samples from `real.csv` beside it;
/// u = (θ, ω) has dim θ = d_x d_z = 2 and dim ω = d_x = 2.
const WGAN: &str = r#"seed = 11

[game]
model = "tanh-wgan"

[data.latent]
draw = "normal"
dim = 1
count = 16

[data.real]
file = "real.csv"        # relative to the job file's folder
columns = [0, 1]
standardize = true

[sga]
schemes = ["alt", "sml"]
batch = 4
eta = [0.5, 0.25]
horizon = 1.0
init = [0.5, -0.5, 0.1, 0.2]

[estimate]
paths = 50
block = 25
functions = ["theta1", "norm2"]
"#;

/// A well-formed real-sample file for [`WGAN`].
const GOOD_CSV: &str = "x,y\n0.1,0.2\n0.5,-0.3\n-0.2,0.9\n1.1,0.4\n";

/// A temporary folder holding one job file, with `out/` as the output folder.
struct Case {
    dir: tempfile::TempDir,
    job: PathBuf,
}

impl Case {
    /// `job_text` written as `job.toml` in a fresh temporary folder.
    fn new(job_text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(&job, job_text).unwrap();
        Case { dir, job }
    }

    /// The LQ job with `from` replaced by `to` (which must occur exactly once).
    fn lq_with(from: &str, to: &str) -> Self {
        Case::new(&edit(LQ, from, to))
    }

    /// The tanh-wgan job with `csv` as its real-sample file.
    fn wgan(csv: &str) -> Self {
        let c = Case::new(WGAN);
        c.write("real.csv", csv);
        c
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// Runs `gansde weak-error <job> --out <dir>/out --quiet <extra...>`.
    fn run(&self, extra: &[&str]) -> Output {
        self.run_job(&self.job, extra)
    }

    fn run_job(&self, job: &Path, extra: &[&str]) -> Output {
        Command::new(BIN)
            .env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1)
            .arg("weak-error")
            .arg(job)
            .arg("--out")
            .arg(self.out())
            .arg("--quiet")
            .args(extra)
            .current_dir(self.dir.path())
            .output()
            .expect("cannot run the gansde binary")
    }

    /// Files in the output folder (none when it does not exist).
    fn outputs(&self) -> Vec<String> {
        match std::fs::read_dir(self.out()) {
            Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Asserts bad input: exit code 2, one `error: ` line on stderr holding
    /// every fragment, and no results file (nor a partial one) in `out/`.
    /// Returns the message.
    fn expect_bad_input(&self, out: &Output, fragments: &[&str]) -> String {
        let msg = expect_one_error(out, 2, fragments);
        let files = self.outputs();
        assert!(
            !files.iter().any(|f| f.contains("weak_error") || f.ends_with(".partial") || f.ends_with(".h5")),
            "bad input left files in the output folder: {files:?}"
        );
        assert!(!self.out().join("weak_error.h5").exists());
        assert!(!self.out().join("weak_error.h5.partial").exists());
        msg
    }
}

/// `text` with the single occurrence of `from` replaced by `to`.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "'{from}' must occur exactly once in the job text");
    text.replacen(from, to, 1)
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

// ---------------------------------------------------------------- valid jobs

#[test]
fn valid_tiny_job_writes_results_and_orders() {
    let c = Case::new(LQ);
    let start = std::time::Instant::now();
    let out = c.run(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(start.elapsed().as_secs_f64() < 10.0, "a tiny job should be quick");
    assert!(c.out().join("weak_error.h5").is_file());
    assert!(!c.out().join("weak_error.h5.partial").exists());
    assert!(!stderr.contains("error"), "stderr:\n{stderr}");
    // 2 schemes x 3 functions: one "observed order" line per table.
    let orders = stdout.lines().filter(|l| l.starts_with("observed order")).count();
    assert_eq!(orders, 6, "stdout:\n{stdout}");
    assert!(stdout.contains("| paper: 2") && stdout.contains("| paper: 1"), "stdout:\n{stdout}");
}

#[test]
fn valid_tiny_wgan_job_runs() {
    let c = Case::wgan(GOOD_CSV);
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(c.out().join("weak_error.h5").is_file());
}

// --------------------------------------------------------------- sga.* keys

#[test]
fn eta_zero() {
    let c = Case::lq_with("eta = [0.5, 0.25]", "eta = [0.5, 0.0]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.eta", "η = 0 is not allowed", "every η must be > 0"]);
}

#[test]
fn eta_negative() {
    let c = Case::lq_with("eta = [0.5, 0.25]", "eta = [-0.25]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.eta", "η = -0.25 is not allowed", "every η must be > 0"]);
}

#[test]
fn eta_above_horizon() {
    let c = Case::lq_with("eta = [0.5, 0.25]", "eta = [2.0, 0.5]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.eta", "η = 2 exceeds the horizon T = 1", "need 0 < η ≤ T"]);
}

#[test]
fn eta_not_dividing_horizon() {
    let c = Case::lq_with("eta = [0.5, 0.25]", "eta = [0.5, 0.3]");
    let out = c.run(&[]);
    c.expect_bad_input(
        &out,
        &["job.toml", "sga.eta", "η = 0.3 does not divide T = 1", "number of steps must be whole", "e.g. η = 0.25 (n = 4) or 0.333", "(n = 3)"],
    );
}

#[test]
fn batch_zero() {
    let c = Case::lq_with("batch = 4", "batch = 0");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.batch", "B = 0 is not allowed", "must be at least 1"]);
}

#[test]
fn init_of_wrong_length() {
    let c = Case::lq_with("init = [1.0, -0.5, 0.5, 1.0]", "init = [1.0, -0.5, 0.5]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.init", "has 3 entries", "dim θ + dim ω = 2 + 2 = 4"]);
}

#[test]
fn init_of_wrong_length_for_wgan() {
    let c = Case::wgan(GOOD_CSV);
    std::fs::write(&c.job, edit(WGAN, "init = [0.5, -0.5, 0.1, 0.2]", "init = [0.5, -0.5]")).unwrap();
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "sga.init", "has 2 entries", "= 2 + 2 = 4"]);
}

// ---------------------------------------------------------- other job keys

#[test]
fn zero_paths() {
    let c = Case::lq_with("paths = 50", "paths = 0");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.paths", "0 paths is not allowed", "need at least 2"]);
}

#[test]
fn an_integer_beyond_64_bits_is_out_of_range() {
    let c = Case::lq_with("paths = 50", "paths = 50");
    let out = c.run(&["--set", "estimate.paths=99999999999999999999"]);
    c.expect_bad_input(&out, &["--set estimate.paths=99999999999999999999", "integer out of range"]);
}

#[test]
fn huge_block_names_the_block() {
    let c = Case::lq_with("paths = 50", "paths = 50");
    let out = c.run(&["--set", "estimate.block=1000000000000000000"]);
    c.expect_bad_input(&out, &["job.toml", "estimate.block", "chains per block is beyond the stream layout", "(value from --set)"]);
}

#[test]
fn a_horizon_of_too_many_steps_is_refused_not_counted() {
    // Checking record times against 2e300 steps once hung.
    let c = Case::lq_with("paths = 50", "paths = 50");
    let out = c.run(&["--set", "sga.horizon=1e300", "--set", "sga.eta=[0.5]", "--set", "estimate.record_times=[1e300]"]);
    c.expect_bad_input(&out, &["job.toml", "sga.horizon", "at most 2^40"]);
}

#[test]
fn unknown_model() {
    let c = Case::lq_with("model = \"lq\"", "model = \"foo\"");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "game.model", "unknown model \"foo\"", "valid: \"lq\", \"tanh-wgan\""]);
}

#[test]
fn unknown_key_names_key_and_line() {
    // `pathz = 3` lands on line 37, the line after `paths = 50` (line 36).
    let c = Case::lq_with("paths = 50\n", "paths = 50\npathz = 3\n");
    assert_eq!(std::fs::read_to_string(&c.job).unwrap().lines().nth(36), Some("pathz = 3"));
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "line 37", "key estimate.pathz", "unknown key `pathz`", "valid keys here:", "`paths`"]);
}

#[test]
fn unknown_key_via_set_names_key() {
    let c = Case::new(LQ);
    let out = c.run(&["--set", "estimate.pathz=3"]);
    c.expect_bad_input(&out, &["job.toml", "unknown key `pathz`", "`paths`", "estimate"]);
}

#[test]
fn toml_syntax_error_is_one_line() {
    let c = Case::lq_with("seed = 20231", "seed = ");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "line 1, column 8 (key seed)"]);
}

#[test]
fn missing_key_names_table() {
    let c = Case::lq_with("paths = 50\n", "");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "([estimate])", "missing key `paths`"]);
}

#[test]
fn unknown_table() {
    let c = Case::lq_with("[sga]", "[sgaa]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "line 21", "([sgaa])", "unknown key `sgaa`", "`sga`"]);
}

#[test]
fn wrong_type_names_key() {
    let c = Case::lq_with("batch = 4", "batch = \"four\"");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "line 23", "key sga.batch", "invalid type: string \"four\", expected an integer"]);
}

#[test]
fn test_function_with_missing_coordinate() {
    let c = Case::lq_with("\"theta1*omega1\"]", "\"theta3\"]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.functions", "'theta3' does not exist", "theta has coordinates 1..=2"]);
}

#[test]
fn job_file_missing() {
    let c = Case::new(LQ);
    let missing = c.dir.path().join("nope.toml");
    let out = c.run_job(&missing, &[]);
    c.expect_bad_input(&out, &["job file", "nope.toml", "cannot be read"]);
}

// --------------------------------------------------------------- data files

#[test]
fn data_file_missing() {
    let c = Case::new(WGAN); // no real.csv beside it
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.file", "real.csv", "does not exist", "relative path is taken from the job file's folder"]);
}

#[test]
fn csv_ragged_row() {
    let c = Case::wgan("x,y\n0.1,0.2\n0.5\n-0.2,0.9\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "line 3", "expected 2 fields (as in the header), found 1"]);
}

#[test]
fn csv_non_numeric_cell() {
    let c = Case::wgan("x,y\n0.1,0.2\n0.5,-0.3\n-0.2,abc\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "line 4", "column 'y'", "'abc' is not a number", "must be a finite number"]);
}

#[test]
fn csv_nan_cell() {
    let c = Case::wgan("x,y\n0.1,0.2\nNaN,-0.3\n-0.2,0.9\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "line 3", "column 'x'", "NaN is not finite", "must be a finite number"]);
}

#[test]
fn csv_missing_column() {
    let c = Case::wgan("x\n0.1\n0.5\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "no column 1", "the header has: 0:x"]);
}

#[test]
fn file_key_on_drawn_samples() {
    let c = Case::lq_with("count = 12\n", "count = 12\ncolumns = [0]\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.columns", "only applies to samples read from a 'file'"]);
}

#[test]
fn draw_key_on_file_samples() {
    let c = Case::wgan(GOOD_CSV);
    std::fs::write(&c.job, edit(WGAN, "standardize = true\n", "standardize = true\ncount = 4\n")).unwrap();
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.count", "cannot be combined with 'file'"]);
}

// -------------------------------------------------------------------- flags

#[test]
fn set_without_equals() {
    let c = Case::new(LQ);
    let out = c.run(&["--set", "estimate.paths"]);
    c.expect_bad_input(&out, &["--set estimate.paths", "expected key=value", "e.g. --set estimate.paths=1000"]);
}

#[test]
fn set_bad_value_is_caught() {
    let c = Case::new(LQ);
    let out = c.run(&["--set", "sga.batch=0"]);
    c.expect_bad_input(&out, &["sga.batch", "B = 0 is not allowed"]);
}

#[test]
fn threads_zero() {
    let c = Case::new(LQ);
    let out = c.run(&["--threads", "0"]);
    c.expect_bad_input(&out, &["--threads", "0 is not allowed", "at least 1"]);
}

#[test]
fn threads_not_a_number() {
    let c = Case::new(LQ);
    let out = c.run(&["--threads", "abc"]);
    c.expect_bad_input(&out, &["invalid value 'abc' for '--threads <THREADS>'", "see 'gansde weak-error --help'"]);
}

#[test]
fn unknown_flag() {
    let c = Case::new(LQ);
    let out = c.run(&["--bogus"]);
    c.expect_bad_input(&out, &["unexpected argument '--bogus'", "--help"]);
}

#[test]
fn existing_results_file_needs_force() {
    let c = Case::new(LQ);
    std::fs::create_dir_all(c.out()).unwrap();
    let results = c.out().join("weak_error.h5");
    std::fs::write(&results, b"earlier results").unwrap();
    let out = c.run(&[]);
    expect_one_error(&out, 2, &["results file", "weak_error.h5", "exists", "--force", "--out"]);
    assert_eq!(std::fs::read(&results).unwrap(), b"earlier results", "the results file was touched");
    assert!(!c.out().join("weak_error.h5.partial").exists());

    // With --force it is replaced.
    let out = c.run(&["--force"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_ne!(std::fs::read(&results).unwrap(), b"earlier results");
}

// --------------------------------------------------------------- divergence

#[test]
fn diverging_chain_exits_3_without_results() {
    // The bound must exceed |u0|: start near 0, the chains leave the ball at once.
    let lq = edit(LQ, "init = [1.0, -0.5, 0.5, 1.0]", "init = [1e-4, 0.0, 0.0, 0.0]");
    let c = Case::new(&format!("{lq}\n[divergence]\nbound = 1e-3\n"));
    let out = c.run(&[]);
    let msg = expect_one_error(&out, 3, &["diverged at η = ", ", step ", "bound 0.001", "divergence.bound"]);
    assert!(msg.contains("η = 0.5") || msg.contains("η = 0.25"), "{msg}");
    assert!(!c.out().join("weak_error.h5").exists());
    assert!(!c.out().join("weak_error.h5.partial").exists());
}

#[test]
fn bound_not_above_initial_norm() {
    // |u0| = |(1, -0.5, 0.5, 1)| = √2.5 ≈ 1.58.
    let c = Case::new(&format!("{LQ}\n[divergence]\nbound = 1.5\n"));
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "divergence.bound", "1.5 must exceed |u0| = 1.58", "sga.init"]);
}

// ------------------------------------------------- paths for a standard error

#[test]
fn one_path() {
    let c = Case::lq_with("paths = 50", "paths = 1");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.paths", "1 paths is not allowed", "need at least 2", "standard error"]);
}

#[test]
fn one_sde_path() {
    let c = Case::lq_with("paths = 50\n", "paths = 50\nsde_paths = 1\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.sde_paths", "1 paths is not allowed", "need at least 2", "standard error"]);
}

#[test]
fn one_max_path() {
    let c = Case::lq_with("paths = 50\n", "paths = 50\ntarget_se = 0.01\nmax_paths = 1\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.max_paths", "1 paths is not allowed", "need at least 2"]);
}

// ------------------------------------------------------ drawn-sample keys

#[test]
fn uniform_with_mean() {
    let c = Case::lq_with("draw = \"normal\"\ncount = 16", "draw = \"uniform\"\ncount = 16");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.latent.mean", "only applies to draw = \"normal\""]);
}

#[test]
fn uniform_with_var() {
    let c = Case::lq_with("draw = \"normal\"\ncount = 16\nmean = [0.3, 0.15]\n", "draw = \"uniform\"\ncount = 16\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.latent.var", "only applies to draw = \"normal\""]);
}

#[test]
fn normal_with_low() {
    let c = Case::lq_with("var = [0.31, 1.08]\n", "var = [0.31, 1.08]\nlow = [0.0, 0.0]\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.low", "only applies to draw = \"uniform\""]);
}

#[test]
fn normal_with_high() {
    let c = Case::lq_with("var = [0.31, 1.08]\n", "var = [0.31, 1.08]\nhigh = [1.0, 1.0]\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.high", "only applies to draw = \"uniform\""]);
}

#[test]
fn empty_mean() {
    let c = Case::lq_with("mean = [0.3, 0.15]\nvar = [1.0, 0.25]\n", "mean = []\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.latent.mean", "is empty", "at least one coordinate"]);
}

// ------------------------------------------------------------ data columns

/// The tanh-wgan job with `columns = [0, 1]` replaced by `columns`.
fn wgan_columns(csv: &str, columns: &str) -> Case {
    let c = Case::wgan(csv);
    std::fs::write(&c.job, edit(WGAN, "columns = [0, 1]", columns)).unwrap();
    c
}

#[test]
fn empty_columns() {
    let c = wgan_columns(GOOD_CSV, "columns = []");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.columns", "name at least one column"]);
}

#[test]
fn empty_latent_columns() {
    let c = Case::wgan(GOOD_CSV);
    let job = edit(WGAN, "draw = \"normal\"\ndim = 1\ncount = 16\n", "file = \"real.csv\"\ncolumns = []\n");
    std::fs::write(&c.job, job).unwrap();
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.latent.columns", "name at least one column"]);
}

#[test]
fn negative_column() {
    let c = wgan_columns(GOOD_CSV, "columns = [-1]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.columns", "-1 is not a column", "0-based non-negative integer", "header names"]);
}

#[test]
fn column_listed_twice() {
    let c = wgan_columns(GOOD_CSV, "columns = [0, 0]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.columns", "column 0 is listed twice"]);
}

#[test]
fn column_by_name_and_index() {
    let c = wgan_columns(GOOD_CSV, "columns = [\"x\", 0]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "data.real.columns", "'x' and 0 select the same column 'x'"]);
}

#[test]
fn constant_csv_column_is_named() {
    let c = Case::wgan("x,y\n0.1,0.2\n0.5,0.2\n-0.2,0.2\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "column 'y' is constant", "cannot be standardised"]);
}

// ------------------------------------------------------- CSV quoting, BOM

#[test]
fn csv_with_bom_and_quoted_text_column_runs() {
    // A byte-order mark, a quoted header, and an unselected text column
    // holding commas and doubled quotes.
    let csv = "\u{feff}\"x\",y,\"note, free text\"\r\n0.1,0.2,\"a, \"\"quoted\"\" note\"\r\n0.5,\"-0.3\",plain\r\n-0.2,0.9,\"\"\r\n1.1,0.4,\"x,y\"\r\n";
    let c = Case::wgan(csv);
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    // The same numbers as the plain file.
    let plain = Case::wgan(GOOD_CSV);
    assert_eq!(plain.run(&[]).status.code(), Some(0));
    let read = |c: &Case| hdf5::File::open(c.out().join("weak_error.h5")).unwrap().dataset("data/real").unwrap().read_raw::<f64>().unwrap();
    assert_eq!(read(&c), read(&plain));
}

#[test]
fn csv_columns_by_quoted_name() {
    let c = wgan_columns("\u{feff}\"a, b\",x,y\n\"t, 1\",0.1,0.2\n\"t\"\"2\",0.5,-0.3\nt3,-0.2,0.9\n", "columns = [\"x\", \"y\"]");
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn csv_unclosed_quote() {
    let c = Case::wgan("x,y\n0.1,0.2\n0.5,\"-0.3\n-0.2,0.9\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "line 3", "quoted field is not closed"]);
}

#[test]
fn csv_quoted_non_numeric_cell() {
    let c = Case::wgan("x,y\n0.1,0.2\n0.5,\"a, b\"\n");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.csv", "line 3", "column 'y'", "'a, b' is not a number", "must be a finite number"]);
}

// ------------------------------------------------------------- HDF5 input

/// The tanh-wgan job reading `real.h5` (dataset `x`, 4 x 2 as given) with `columns`.
fn wgan_h5(rows: &[[f64; 2]], columns: &str) -> Case {
    let c = Case::new(&edit(&edit(WGAN, "file = \"real.csv\"", "file = \"real.h5\"\ndataset = \"x\""), "columns = [0, 1]", columns));
    let f = hdf5::File::create(c.dir.path().join("real.h5")).unwrap();
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    f.new_dataset::<f64>().shape([rows.len(), 2]).create("x").unwrap().write_raw(&flat).unwrap();
    c
}

const H5_ROWS: [[f64; 2]; 4] = [[0.1, 0.2], [0.5, -0.3], [-0.2, 0.9], [1.1, 0.4]];

#[test]
fn hdf5_input_runs() {
    let c = wgan_h5(&H5_ROWS, "columns = [1, 0]");
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn hdf5_column_by_name() {
    let c = wgan_h5(&H5_ROWS, "columns = [\"x\", 1]");
    let out = c.run(&[]);
    let msg = c.expect_bad_input(&out, &["real.h5", "'x'", "HDF5 datasets have no header; select columns by index, 0 to 1"]);
    assert!(!msg.contains(".."), "{msg}");
}

#[test]
fn hdf5_column_out_of_range() {
    let c = wgan_h5(&H5_ROWS, "columns = [0, 2]");
    let out = c.run(&[]);
    let msg = c.expect_bad_input(&out, &["real.h5", "no column 2", "0 to 1"]);
    assert!(!msg.contains(".."), "{msg}");
}

#[test]
fn hdf5_nan_names_row() {
    let mut rows = H5_ROWS;
    rows[2][1] = f64::NAN;
    let c = wgan_h5(&rows, "columns = [0, 1]");
    let out = c.run(&[]);
    let msg = c.expect_bad_input(&out, &["real.h5", "dataset 'x'", "row 3", "column 1", "NaN is not finite"]);
    assert!(!msg.contains("line"), "{msg}");
}

#[test]
fn hdf5_constant_column_names_index() {
    let rows = [[0.1, 7.0], [0.5, 7.0], [-0.2, 7.0], [1.1, 7.0]];
    let c = wgan_h5(&rows, "columns = [0, 1]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["real.h5", "column 1 of dataset 'x' is constant"]);
}

// ---------------------------------------------------------- test functions

#[test]
fn function_listed_twice() {
    let c = Case::lq_with("\"theta1*omega1\"]", "\"theta1*omega1\", \"theta1\"]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.functions", "\"theta1\" is listed twice"]);
}

#[test]
fn function_repeated_under_another_name() {
    let c = Case::lq_with("\"theta1*omega1\"]", "\"theta1*omega1\", \"u3*u1\"]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.functions", "\"u3*u1\" is the same test function as \"theta1*omega1\""]);
}

#[test]
fn product_with_one_factor() {
    let c = Case::lq_with("\"theta1*omega1\"]", "\"omega2*\"]");
    let out = c.run(&[]);
    c.expect_bad_input(&out, &["job.toml", "estimate.functions", "'omega2*' is not a product of two coordinates"]);
}

// ----------------------------------------------- stored job reproduces a run

/// `weak_error/<scheme>/<name>` as bits, for every numeric dataset.
fn result_bits(path: &Path) -> Vec<(String, Vec<u64>)> {
    let f = hdf5::File::open(path).unwrap();
    let mut out = Vec::new();
    for scheme in ["alt", "sml"] {
        let g = f.group(&format!("weak_error/{scheme}")).unwrap();
        for name in ["sga_mean", "sga_m2", "sde_mean", "sde_m2", "bias_mean", "weak_error", "standard_error"] {
            let v = g.dataset(name).unwrap().read_raw::<f64>().unwrap();
            out.push((format!("{scheme}/{name}"), v.iter().map(|x| x.to_bits()).collect()));
        }
        let counts = g.dataset("sga_count").unwrap().read_raw::<u64>().unwrap();
        out.push((format!("{scheme}/sga_count"), counts));
    }
    out
}

#[test]
fn stored_job_text_reproduces_a_run_with_overrides() {
    let c = Case::new(LQ);
    // A value spanning two lines must not break out of the comment.
    let out = c.run(&["--set", "estimate.paths=40", "--set", "sga.eta=[0.5,\n 0.25]", "--set", "seed=7"]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let first = c.out().join("weak_error.h5");
    let f = hdf5::File::open(&first).unwrap();
    let text = f.attr("job").unwrap().read_scalar::<hdf5::types::VarLenUnicode>().unwrap().as_str().to_string();
    let fingerprint: u64 = f.attr("fingerprint").unwrap().read_scalar().unwrap();
    drop(f);
    let first_line = text.lines().next().unwrap();
    assert!(first_line.starts_with("# job.toml with --set estimate.paths=40, sga.eta=[0.5,\\n 0.25], seed=7 applied"), "{text}");
    assert!(text.lines().nth(1).is_some_and(|l| !l.starts_with(" 0.25]")), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with('#')).count(), 1, "{text}");

    let rerun = c.dir.path().join("rerun.toml");
    std::fs::write(&rerun, &text).unwrap();
    let out2 = c.dir.path().join("out2");
    let o = Command::new(BIN)
        .env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1)
        .arg("weak-error")
        .arg(&rerun)
        .arg("--out")
        .arg(&out2)
        .arg("--quiet")
        .current_dir(c.dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&o.stderr));
    let second = out2.join("weak_error.h5");
    assert_eq!(result_bits(&first), result_bits(&second));
    let f = hdf5::File::open(&second).unwrap();
    assert_eq!(f.attr("fingerprint").unwrap().read_scalar::<u64>().unwrap(), fingerprint, "the rerun is the same study");
    assert_eq!(f.attr("seed").unwrap().read_scalar::<u64>().unwrap(), 7);
    // The overrides took effect: 40 paths, not the file's 50.
    let counts = f.dataset("weak_error/alt/sga_count").unwrap().read_raw::<u64>().unwrap();
    assert!(counts.iter().all(|&n| n == 40), "{counts:?}");

    // And differ from the run without them.
    let plain = Case::new(LQ);
    assert_eq!(plain.run(&[]).status.code(), Some(0));
    assert_ne!(result_bits(&plain.out().join("weak_error.h5")), result_bits(&first));
}

#[test]
fn stored_job_text_without_overrides_is_the_file() {
    let c = Case::new(LQ);
    let out = c.run(&[]);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let f = hdf5::File::open(c.out().join("weak_error.h5")).unwrap();
    let text = f.attr("job").unwrap().read_scalar::<hdf5::types::VarLenUnicode>().unwrap().as_str().to_string();
    assert_eq!(text, LQ);
}
