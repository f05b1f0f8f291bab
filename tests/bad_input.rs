//! Bad input gives one message, exit code 2 and nothing written (DESIGN §3,
//! "Errors are for people"); a valid tiny job finishes with exit code 0; a
//! diverging chain stops the study with exit code 3 and no results file.
//!
//! Every test runs the real binary in its own temporary folder with its own
//! small job file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_gansde");

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
    c.expect_bad_input(&out, &["job.toml", "estimate.paths", "0 paths is not allowed", "need at least 1"]);
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
    let c = Case::new(&format!("{LQ}\n[divergence]\nbound = 1e-3\n"));
    let out = c.run(&[]);
    let msg = expect_one_error(&out, 3, &["diverged at η = ", ", step ", "bound 0.001", "divergence.bound"]);
    assert!(msg.contains("η = 0.5") || msg.contains("η = 0.25"), "{msg}");
    assert!(!c.out().join("weak_error.h5").exists());
    assert!(!c.out().join("weak_error.h5.partial").exists());
}
