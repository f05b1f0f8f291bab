//! The job file (TOML) plus `--set key=value` overrides become one validated
//! [`Job`], the only configuration the engine accepts. Defaults are settled
//! here and nowhere else; every rejection names the key and what is valid.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::data::{self, Column, DataError, Draw, Samples};
use crate::game::{Activation, Game, Lq, Mlp, MlpConfig, MlpLoss, TanhWgan};
use crate::linalg::Mat;

mod long_run;
pub use long_run::{LongRun, Projection, SchedulerSpec, TraceMethod};

/// A job that cannot run, with the key or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job file {path}: cannot be read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("job file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("job file {path}: {key}: {message}")]
    Invalid { path: PathBuf, key: String, message: String },
    #[error("--set {arg}: {message}")]
    Override { arg: String, message: String },
    #[error(transparent)]
    Data(#[from] DataError),
}

/// SGA scheme (DESIGN §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// Alternating: ω first with batch B, then θ at the new ω with an independent batch.
    Alt,
    /// Simultaneous: both players from one batch at the old point.
    Sml,
}

impl Scheme {
    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Alt => "alt",
            Scheme::Sml => "sml",
        }
    }
}

/// The SDE drift paired with an SGA scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drift {
    /// b0 + η b1, the ALT-SDE of Theorem 1.
    SecondOrder,
    /// b0, the SML-SDE of Theorem 2.
    FirstOrder,
    /// b0 − (η/2)(∇b0) b0, the modified SML-SDE of Remark 1 (eq. 10).
    Modified,
}

impl Drift {
    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            Drift::SecondOrder => "second-order",
            Drift::FirstOrder => "first-order",
            Drift::Modified => "modified",
        }
    }
}

/// The diffusion used by the SDE (DESIGN §1 "The noise factor").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Noise {
    /// σσᵀ = (η/B) blockdiag(Σ_θ, Σ_ω), the paper's.
    Block,
    /// σσᵀ = (η/B) Cov(−g_θ, g_ω) including the θ–ω cross covariance.
    Full,
}

impl Noise {
    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            Noise::Block => "block",
            Noise::Full => "full",
        }
    }
}

/// How SDE paths are integrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Integrator {
    /// Euler–Maruyama at m substeps per η, bias estimated against 2m.
    Euler,
    /// Richardson extrapolation 2E f_{h/2} − E f_h with coupled increments (weak order 2).
    Richardson,
    /// The exact Ornstein–Uhlenbeck transition (`lq` only).
    Exact,
}

impl Integrator {
    /// The job-file name.
    pub fn name(self) -> &'static str {
        match self {
            Integrator::Euler => "euler",
            Integrator::Richardson => "richardson",
            Integrator::Exact => "exact",
        }
    }
}

/// A test function f(u).
#[derive(Clone, Debug, PartialEq)]
pub enum TestFunction {
    /// u_k (0-based index into u = (θ, ω)).
    Coord(usize),
    /// |u|².
    Norm2,
    /// u_k · u_l.
    Product(usize, usize),
    /// The loss Φ(u).
    Loss,
}

impl TestFunction {
    /// f(u); `game` is needed for the loss.
    #[inline]
    pub fn eval(&self, u: &[f64], game: &dyn Game) -> f64 {
        match *self {
            TestFunction::Coord(k) => u[k],
            TestFunction::Norm2 => u.iter().map(|a| a * a).sum(),
            TestFunction::Product(k, l) => u[k] * u[l],
            TestFunction::Loss => game.loss(u),
        }
    }
}

/// The game named by the job.
#[derive(Clone, Debug)]
pub enum ModelSpec {
    Lq {
        a: Mat,
        c: Mat,
        d: Mat,
    },
    TanhWgan {
        ridge_theta: f64,
        ridge_omega: f64,
    },
    /// One hidden layer each (paper §4.2.1); layout in [`crate::game::mlp`].
    Mlp(MlpConfig),
}

/// A precision target: the study adds blocks per (scheme, η) until every
/// weak error of that η meets it or `estimate.max_paths` is reached.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Target {
    /// Standard error of every weak error ≤ this.
    StdError(f64),
    /// Interval half-width ≤ this fraction of |e|.
    RelativeCi(f64),
}

/// What to do with a diverging chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DivergencePolicy {
    /// A chain diverges when |u| exceeds this bound or turns NaN/Inf.
    pub bound: f64,
    /// Stop the study at the first divergence (default) or count and skip.
    pub stop: bool,
}

/// SDE settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SdeConfig {
    pub integrator: Integrator,
    /// Least substeps per η of the coarsest level.
    pub substeps: usize,
    /// Largest coarse step h; raises the substeps at large η (None: no cap).
    pub max_step: Option<f64>,
    pub noise: Noise,
    pub alt_drift: Drift,
    pub sml_drift: Drift,
}

impl SdeConfig {
    /// m at learning rate η: max(substeps, ⌈η / max_step⌉), so the coarse
    /// step η/m never exceeds max_step.
    pub fn substeps_for(&self, eta: f64) -> usize {
        match self.max_step {
            Some(h) => self.substeps.max((eta / h * (1.0 - 1e-12)).ceil() as usize),
            None => self.substeps,
        }
    }

    /// The drift paired with a scheme.
    pub fn drift_for(&self, s: Scheme) -> Drift {
        match s {
            Scheme::Alt => self.alt_drift,
            Scheme::Sml => self.sml_drift,
        }
    }

    /// The weak order the paper proves (or Remark 1 suggests) for this
    /// pairing. `cross_free`: the game's per-sample θ–ω gradient cross
    /// covariance vanishes (as for `lq`), so block and full noise coincide.
    pub fn paper_order(&self, s: Scheme, cross_free: bool) -> f64 {
        match (s, self.drift_for(s), self.noise) {
            (Scheme::Alt, Drift::SecondOrder, Noise::Block) => 2.0,
            (Scheme::Sml, Drift::Modified, Noise::Full) => 2.0,
            (Scheme::Alt, Drift::SecondOrder, Noise::Full) | (Scheme::Sml, Drift::Modified, Noise::Block) if cross_free => 2.0,
            _ => 1.0,
        }
    }
}

/// A validated weak-error job.
#[derive(Clone, Debug)]
pub struct Job {
    /// The job text after overrides, stored in the results file.
    pub text: String,
    /// Identity of the study (job, data, code): saved state must match it.
    pub fingerprint: u64,
    /// The job file's stem (names the default output folder).
    pub name: String,
    pub seed: u64,
    pub model: ModelSpec,
    pub latent: Samples,
    pub real: Samples,
    pub schemes: Vec<Scheme>,
    pub batch: usize,
    pub etas: Vec<f64>,
    /// T/η for each η.
    pub steps: Vec<usize>,
    pub horizon: f64,
    pub init: Vec<f64>,
    pub sde: SdeConfig,
    /// SGA chains per η and scheme.
    pub paths: u64,
    /// SDE paths per η and scheme.
    pub sde_paths: u64,
    /// Chains per block (part of a result's identity).
    pub block: u64,
    /// Optional precision target (paths then grow in whole blocks).
    pub target: Option<Target>,
    /// Cap on SGA chains per (scheme, η) under a target (SDE paths scale alike).
    pub max_paths: u64,
    pub record_times: Vec<f64>,
    pub functions: Vec<TestFunction>,
    pub function_names: Vec<String>,
    pub confidence: f64,
    pub divergence: DivergencePolicy,
    /// Whether the job has an `[estimate]` table (a weak-error study).
    pub has_estimate: bool,
    /// The `[long_run]` table, if any (a long-run study).
    pub long_run: Option<LongRun>,
    /// Values outside the theorems' range, worth a warning but not an error.
    pub warnings: Vec<String>,
}

impl Job {
    /// The game on the job's data.
    pub fn game(&self) -> Box<dyn Game> {
        match &self.model {
            ModelSpec::Lq { a, c, d } => Box::new(Lq::new(a.clone(), c.clone(), d.clone(), self.latent.clone(), self.real.clone())),
            ModelSpec::TanhWgan { ridge_theta, ridge_omega } => Box::new(TanhWgan::new(self.latent.clone(), self.real.clone(), *ridge_theta, *ridge_omega)),
            ModelSpec::Mlp(config) => Box::new(Mlp::new(self.latent.clone(), self.real.clone(), *config)),
        }
    }

    /// The step index of record time r at η index e.
    pub fn record_step(&self, e: usize, r: usize) -> usize {
        (self.record_times[r] / self.etas[e]).round() as usize
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    seed: i64,
    game: RawGame,
    data: RawData,
    sga: RawSga,
    #[serde(default)]
    sde: RawSde,
    estimate: Option<RawEstimate>,
    long_run: Option<long_run::RawLongRun>,
    #[serde(default)]
    divergence: RawDivergence,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGame {
    model: String,
    #[serde(rename = "A")]
    a: Option<Vec<Vec<f64>>>,
    #[serde(rename = "C")]
    c: Option<Vec<Vec<f64>>>,
    #[serde(rename = "D")]
    d: Option<Vec<Vec<f64>>>,
    ridge_theta: Option<f64>,
    ridge_omega: Option<f64>,
    hidden_g: Option<i64>,
    hidden_d: Option<i64>,
    activation_g: Option<String>,
    activation_d: Option<String>,
    loss: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    latent: RawSource,
    real: RawSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    file: Option<String>,
    dataset: Option<String>,
    /// 0-based indices or header names; checked in [`source`] so a bad entry
    /// gets a message in the job file's terms.
    columns: Option<Vec<toml::Value>>,
    standardize: Option<bool>,
    draw: Option<String>,
    count: Option<i64>,
    dim: Option<i64>,
    mean: Option<Vec<f64>>,
    var: Option<Vec<f64>>,
    low: Option<Vec<f64>>,
    high: Option<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSga {
    schemes: Vec<String>,
    batch: i64,
    eta: Vec<f64>,
    horizon: f64,
    /// The starting point u0: numbers, or "random" (see [`initial_point`]).
    init: toml::Value,
    init_scale: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSde {
    integrator: Option<String>,
    substeps: Option<i64>,
    max_step: Option<f64>,
    noise: Option<String>,
    alt_drift: Option<String>,
    sml_drift: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawEstimate {
    paths: i64,
    sde_paths: Option<i64>,
    block: Option<i64>,
    target_se: Option<f64>,
    target_rel_ci: Option<f64>,
    max_paths: Option<i64>,
    record_times: Option<Vec<f64>>,
    functions: Vec<String>,
    confidence: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDivergence {
    bound: Option<f64>,
    action: Option<String>,
}

/// Default chains per block.
pub const DEFAULT_BLOCK: u64 = 1000;
/// Default divergence bound on |u|.
pub const DEFAULT_BOUND: f64 = 1e6;
/// Most η-steps per chain (T/η): beyond it a run could not end, and step
/// counts would lose precision as floats.
const MAX_STEPS: u64 = 1 << 40;
/// Most samples drawn for a data set (`draw` with `count`).
const MAX_DRAWN: i64 = 10_000_000;
/// Most coordinates of a drawn sample.
const MAX_DIM: i64 = 100_000;
/// Most values (count × dim) of a drawn data set: 800 MB.
const MAX_DRAWN_VALUES: u64 = 100_000_000;

/// Reads, overrides and validates a job file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Job, JobError> {
    let text = std::fs::read_to_string(path).map_err(|e| JobError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| JobError::Syntax { path: path.to_path_buf(), message: toml_message(&text, &e) })?;
    for arg in overrides {
        apply_override(&mut table, arg)?;
    }
    // Keys given on the command line: errors about them say so, since the file named does not hold the value.
    let set_keys: Vec<&str> = overrides.iter().filter_map(|o| o.split_once('=')).map(|(k, _)| k.trim()).collect();
    // The stored text reproduces the run: the file as written, or with
    // overrides the canonical TOML of the overridden table under a comment
    // naming them (control characters escaped so nothing leaves the comment).
    let effective = if overrides.is_empty() {
        text.clone()
    } else {
        let file = path.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
        let canonical = toml::to_string(&table)
            .map_err(|e| JobError::Syntax { path: path.to_path_buf(), message: data::one_line(&format!("cannot write the job with --set applied: {e}")) })?;
        format!("# {}\n{canonical}", data::one_line(&format!("{file} with --set {} applied", overrides.join(", "))))
    };
    // Without overrides, deserialise the text itself so errors carry line and column.
    // Said before the tables are read, so a half-written [estimate] in a long-run job is not reported as a missing key.
    if table.contains_key("estimate") && table.contains_key("long_run") {
        let how = if overrides.is_empty() { "" } else { " (with --set applied)" };
        return Err(JobError::Invalid {
            path: path.to_path_buf(),
            key: "long_run".into(),
            message: format!("a job is either a weak-error study ([estimate]) or a long-run study ([long_run]), not both{how}; split it into two files"),
        });
    }
    let parsed: Result<RawJob, toml::de::Error> = if overrides.is_empty() { toml::from_str(&text) } else { table.clone().try_into() };
    let raw = parsed.map_err(|e| {
        let mut message = toml_message(&text, &e);
        // serde names the key as `a.b`.
        if set_keys.iter().any(|k| message.contains(&format!("`{k}`"))) {
            message.push_str(" (value from --set)");
        }
        JobError::Syntax { path: path.to_path_buf(), message }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "job".into());
    let mut job = validate(raw, path, base, name, effective).map_err(|e| match e {
        JobError::Invalid { path, key, message } if set_keys.contains(&key.as_str()) => {
            JobError::Invalid { path, key, message: format!("{message} (value from --set)") }
        }
        e => e,
    })?;
    job.fingerprint = fingerprint(&toml::to_string(&table).unwrap_or_default(), &job);
    Ok(job)
}

/// FNV-1a over the canonical job (keys sorted, overrides applied), the data
/// the game uses, the random-stream scheme and the code version: saved state
/// is reused only by the same study from the same binary source.
fn fingerprint(canonical: &str, job: &Job) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    eat(canonical.as_bytes());
    for v in job.latent.data.iter().chain(&job.real.data) {
        eat(&v.to_le_bytes());
    }
    eat(crate::rng::RNG_SCHEME.as_bytes());
    eat(env!("CARGO_PKG_VERSION").as_bytes());
    eat(env!("GANSDE_GIT_COMMIT").as_bytes());
    h
}

/// One line for a TOML or deserialisation error: "line L, column C (key
/// table.key): message" (or "(in [table])", or "([table])" on a header line)
/// when the error has a position in `text`, else the message with the key
/// path toml appends. Serde's wording is put in the job file's terms (keys,
/// integers, numbers).
fn toml_message(text: &str, e: &toml::de::Error) -> String {
    let message = match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = &text[..start];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // `[name]` or `[[name]]`, not a continuation line of an array.
            let header = |l: &str| {
                let l = l.split('#').next().unwrap_or("").trim();
                let name = l.strip_prefix('[')?.strip_suffix(']')?.trim_matches(|c| c == '[' || c == ']').trim();
                let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ');
                (name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') && name.chars().all(bare)).then(|| name.to_string())
            };
            let this_line = text.lines().nth(line - 1).unwrap_or("");
            // The table the error is in, and the key on the error's line when
            // it is a plain `key = value` line.
            let table = text.lines().take(line - 1).filter_map(header).last();
            let key = this_line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')));
            let message = e.message().trim();
            if let Some(t) = header(this_line) {
                // A table's own header: an unknown table, or a key missing from it.
                format!("line {line}, column {column} ([{t}]): {message}")
            } else if message.starts_with("missing field") {
                // Missing from the top level (toml points at the document's start).
                format!("top level: {message}")
            } else {
                let place = match (table, key) {
                    (Some(t), Some(k)) => format!(" (key {t}.{k})"),
                    (None, Some(k)) => format!(" (key {k})"),
                    (Some(t), None) => format!(" (in [{t}])"),
                    (None, None) => String::new(),
                };
                format!("line {line}, column {column}{place}: {message}")
            }
        }
        None => e.to_string(),
    };
    let message = message.trim().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    let message = message
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace(", expected one of", "; valid keys here:")
        .replace("expected i64", "expected an integer")
        .replace("expected f64", "expected a number");
    without_type_names(&message)
}

/// "expected struct RawLongRun" (serde names the Rust type a table is read
/// into) becomes "expected a table".
fn without_type_names(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find("struct Raw") {
        out.push_str(&rest[..i]);
        out.push_str("a table");
        rest = rest[i + "struct Raw".len()..].trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}

/// `x` in plain notation when that is short, else in scientific notation.
fn short_number(x: f64) -> String {
    if x == 0.0 || (1e-4..1e7).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// Whether `s` is a decimal integer (optional sign, digits, `_` separators)
/// beyond 64 bits.
fn is_too_long_integer(s: &str) -> bool {
    let plain: String = s.chars().filter(|c| *c != '_').collect();
    let digits = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && plain.parse::<i64>().is_err()
}

/// Applies `a.b.c=value`; the value is read as TOML (number, array, string...)
/// and falls back to a bare string.
fn apply_override(table: &mut toml::Table, arg: &str) -> Result<(), JobError> {
    let bad = |m: &str| JobError::Override { arg: arg.to_string(), message: m.to_string() };
    let (key, value) = arg.split_once('=').ok_or_else(|| bad("expected key=value, e.g. --set estimate.paths=1000"))?;
    let key = key.trim();
    let value: toml::Value = match format!("v = {}", value.trim()).parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap(),
        // An integer TOML cannot hold would otherwise become a string, and the
        // error would speak of types.
        Err(_) if is_too_long_integer(value.trim()) => {
            return Err(bad("integer out of range (TOML integers are 64-bit: −9223372036854775808 to 9223372036854775807)"))
        }
        Err(_) => toml::Value::String(value.trim().to_string()),
    };
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("empty key segment"));
    }
    let mut cur = table;
    for p in &parts[..parts.len() - 1] {
        let entry = cur.entry(p.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| bad(&format!("'{p}' is not a table")))?;
    }
    cur.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

struct Ctx<'a> {
    path: &'a Path,
}

impl Ctx<'_> {
    fn err(&self, key: &str, message: impl Into<String>) -> JobError {
        JobError::Invalid { path: self.path.to_path_buf(), key: key.to_string(), message: message.into() }
    }
}

fn matrix(ctx: &Ctx, key: &str, rows: &Option<Vec<Vec<f64>>>) -> Result<Mat, JobError> {
    let rows = rows.as_ref().ok_or_else(|| ctx.err(key, "required for model \"lq\""))?;
    if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len() || r.is_empty()) {
        return Err(ctx.err(key, "must be a non-empty matrix with rows of equal length"));
    }
    if rows.iter().flatten().any(|v| !v.is_finite()) {
        return Err(ctx.err(key, "entries must be finite"));
    }
    Ok(Mat::from_rows(rows))
}

fn positive_definite(ctx: &Ctx, key: &str, m: &Mat) -> Result<(), JobError> {
    if m.rows != m.cols {
        return Err(ctx.err(key, format!("must be square, got {}x{}", m.rows, m.cols)));
    }
    for i in 0..m.rows {
        for j in 0..i {
            if (m[(i, j)] - m[(j, i)]).abs() > 1e-12 * (1.0 + m[(i, j)].abs()) {
                return Err(ctx.err(key, "must be symmetric"));
            }
        }
    }
    match crate::linalg::cholesky_psd(m) {
        Ok(l) if (0..m.rows).all(|i| l[(i, i)] > 0.0) => Ok(()),
        _ => Err(ctx.err(key, "must be positive definite")),
    }
}

fn source(ctx: &Ctx, key: &str, src: &RawSource, base: &Path, seed: u64, which: u8) -> Result<Samples, JobError> {
    if let Some(file) = &src.file {
        let drawn = [("draw", src.draw.is_some()), ("count", src.count.is_some()), ("dim", src.dim.is_some()), ("mean", src.mean.is_some())];
        let drawn = drawn.into_iter().chain([("var", src.var.is_some()), ("low", src.low.is_some()), ("high", src.high.is_some())]);
        for (k, present) in drawn {
            if present {
                return Err(ctx.err(&format!("{key}.{k}"), "cannot be combined with 'file'"));
            }
        }
        let p = base.join(file);
        if !p.exists() {
            return Err(
                ctx.err(&format!("{key}.file"), format!("data file {} does not exist (a relative path is taken from the job file's folder)", p.display()))
            );
        }
        let columns = src.columns.as_deref().map(|c| columns(ctx, &format!("{key}.columns"), c)).transpose()?;
        let is_h5 = matches!(p.extension().and_then(|e| e.to_str()), Some("h5" | "hdf5" | "he5"));
        let read = if is_h5 {
            let ds = src.dataset.as_deref().ok_or_else(|| ctx.err(&format!("{key}.dataset"), "required for an HDF5 file"))?;
            data::load_hdf5(&p, ds, columns.as_deref())?
        } else {
            if src.dataset.is_some() {
                return Err(ctx.err(&format!("{key}.dataset"), "only for HDF5 files (.h5, .hdf5)"));
            }
            data::load_csv(&p, columns.as_deref())?
        };
        // A name and an index (or two equal names in the header) can pick the same column.
        for (i, k) in read.picks.iter().enumerate() {
            if let Some(j) = read.picks[..i].iter().position(|q| q == k) {
                let cols = columns.as_deref().unwrap_or_default();
                return Err(ctx.err(
                    &format!("{key}.columns"),
                    data::one_line(&format!("{} and {} select the same column {}; list each column once", cols[j], cols[i], read.labels[i])),
                ));
            }
        }
        if read.samples.dim == 0 {
            return Err(ctx.err(&format!("{key}.file"), format!("{} has no columns; samples need at least one coordinate", p.display())));
        }
        let mut s = read.samples;
        if src.standardize.unwrap_or(false) {
            s.standardize().map_err(|k| DataError::Constant { path: p.clone(), column: read.labels[k].clone() })?;
        }
        return Ok(s);
    }
    for (k, present) in [("columns", src.columns.is_some()), ("standardize", src.standardize.is_some()), ("dataset", src.dataset.is_some())] {
        if present {
            return Err(ctx.err(&format!("{key}.{k}"), "only applies to samples read from a 'file'"));
        }
    }
    let kind = src.draw.as_deref().ok_or_else(|| ctx.err(key, "give either 'file' or 'draw' (\"normal\" or \"uniform\")"))?;
    // Keys of the other distribution would be silently ignored.
    let foreign = match kind {
        "normal" => [("low", src.low.is_some()), ("high", src.high.is_some())],
        "uniform" => [("mean", src.mean.is_some()), ("var", src.var.is_some())],
        other => return Err(ctx.err(&format!("{key}.draw"), format!("unknown distribution \"{other}\"; valid: \"normal\", \"uniform\""))),
    };
    for (k, present) in foreign {
        if present {
            let owner = if kind == "normal" { "uniform" } else { "normal" };
            return Err(ctx.err(&format!("{key}.{k}"), format!("only applies to draw = \"{owner}\" (this source has draw = \"{kind}\")")));
        }
    }
    let count = src.count.ok_or_else(|| ctx.err(&format!("{key}.count"), "required with 'draw'"))?;
    if count < 1 {
        return Err(ctx.err(&format!("{key}.count"), format!("{count} is not a positive number of samples")));
    }
    if count > MAX_DRAWN {
        return Err(ctx.err(&format!("{key}.count"), format!("{count} samples is beyond the limit of 10^7 (each step's gradients cost O(count))")));
    }
    let dim_of = |v: &Option<Vec<f64>>| v.as_ref().map(|v| v.len());
    let dim = match (src.dim, dim_of(&src.mean).or(dim_of(&src.low))) {
        (Some(d), _) if d < 1 => return Err(ctx.err(&format!("{key}.dim"), "must be at least 1")),
        (Some(d), _) if d > MAX_DIM => return Err(ctx.err(&format!("{key}.dim"), format!("{d} is beyond the limit of {MAX_DIM} coordinates"))),
        (Some(d), Some(l)) if d as usize != l => return Err(ctx.err(&format!("{key}.dim"), format!("is {d} but the mean/low vector has {l} entries"))),
        (Some(d), _) => d as usize,
        (None, Some(0)) => {
            let k = if src.mean.is_some() { "mean" } else { "low" };
            return Err(ctx.err(&format!("{key}.{k}"), "is empty; samples need at least one coordinate"));
        }
        (None, Some(l)) => l,
        (None, None) => return Err(ctx.err(&format!("{key}.dim"), "required when no mean (or low) vector is given")),
    };
    if count as u128 * dim as u128 > MAX_DRAWN_VALUES as u128 {
        return Err(ctx.err(&format!("{key}.count"), format!("{count} samples × {dim} coordinates is beyond the limit of 10^8 values")));
    }
    let vec_or = |k: &str, v: &Option<Vec<f64>>, dflt: f64| -> Result<Vec<f64>, JobError> {
        match v {
            None => Ok(vec![dflt; dim]),
            Some(v) if v.len() != dim => Err(ctx.err(&format!("{key}.{k}"), format!("has {} entries, expected {dim}", v.len()))),
            Some(v) if v.iter().any(|x| !x.is_finite()) => Err(ctx.err(&format!("{key}.{k}"), "entries must be finite")),
            Some(v) => Ok(v.clone()),
        }
    };
    let dist = match kind {
        "normal" => {
            let var = vec_or("var", &src.var, 1.0)?;
            if var.iter().any(|v| *v < 0.0) {
                return Err(ctx.err(&format!("{key}.var"), "variances must be ≥ 0"));
            }
            Draw::Normal { mean: vec_or("mean", &src.mean, 0.0)?, var }
        }
        "uniform" => {
            let (low, high) = (vec_or("low", &src.low, -1.0)?, vec_or("high", &src.high, 1.0)?);
            if low.iter().zip(&high).any(|(l, h)| l >= h) {
                return Err(ctx.err(&format!("{key}.high"), "each high must exceed its low"));
            }
            Draw::Uniform { low, high }
        }
        _ => unreachable!("checked above"),
    };
    Ok(data::draw(seed, which, count as usize, &dist))
}

/// The `columns` of a file source: non-negative integers (0-based indices) or
/// header names, at least one, none twice.
fn columns(ctx: &Ctx, key: &str, raw: &[toml::Value]) -> Result<Vec<Column>, JobError> {
    if raw.is_empty() {
        return Err(ctx.err(key, "name at least one column (a 0-based index or a header name), or leave the key out for all columns"));
    }
    let mut out: Vec<Column> = Vec::with_capacity(raw.len());
    for v in raw {
        let c = match v {
            toml::Value::Integer(i) if *i >= 0 => Column::Index(*i as usize),
            toml::Value::String(s) => Column::Name(s.clone()),
            other => {
                return Err(ctx.err(
                    key,
                    format!(
                        "{} is not a column; columns are 0-based non-negative integer indices or header names (strings)",
                        data::one_line(&other.to_string())
                    ),
                ))
            }
        };
        if out.contains(&c) {
            return Err(ctx.err(key, format!("column {} is listed twice", data::one_line(&c.to_string()))));
        }
        out.push(c);
    }
    Ok(out)
}

fn parse_function(name: &str, dt: usize, dw: usize) -> Result<TestFunction, String> {
    let coord = |s: &str| -> Result<usize, String> {
        let s = s.trim();
        let (prefix, num, limit, off) = if let Some(n) = s.strip_prefix("theta") {
            ("theta", n, dt, 0)
        } else if let Some(n) = s.strip_prefix("omega") {
            ("omega", n, dw, dt)
        } else if let Some(n) = s.strip_prefix('u') {
            ("u", n, dt + dw, 0)
        } else {
            return Err(format!("'{s}' is not a coordinate (thetaK, omegaK or uK, 1-based)"));
        };
        let k: usize = num.parse().map_err(|_| format!("'{s}' is not a coordinate (thetaK, omegaK or uK, 1-based)"))?;
        if k < 1 || k > limit {
            return Err(format!("'{s}' does not exist: {prefix} has coordinates 1..={limit}"));
        }
        Ok(off + k - 1)
    };
    match name.trim() {
        "norm2" => Ok(TestFunction::Norm2),
        "loss" => Ok(TestFunction::Loss),
        s if s.contains('*') => {
            let (a, b) = s.split_once('*').unwrap();
            if a.trim().is_empty() || b.trim().is_empty() || b.contains('*') {
                return Err(format!("'{s}' is not a product of two coordinates (write e.g. \"theta1*omega1\")"));
            }
            Ok(TestFunction::Product(coord(a)?, coord(b)?))
        }
        s => coord(s).map(TestFunction::Coord),
    }
}

/// The `mlp` settings of `[game]`: widths (required, ≥ 1), activations
/// (default "tanh") and loss (default "wasserstein").
fn mlp_config(ctx: &Ctx, g: &RawGame, ridge_theta: f64, ridge_omega: f64) -> Result<ModelSpec, JobError> {
    let width = |key: &str, v: Option<i64>| -> Result<usize, JobError> {
        match v {
            None => Err(ctx.err(key, "required for model \"mlp\" (the hidden-layer width, an integer ≥ 1)")),
            Some(w) if !(1..=100_000).contains(&w) => Err(ctx.err(key, format!("{w} is not a hidden-layer width; need an integer in 1..=100000"))),
            Some(w) => Ok(w as usize),
        }
    };
    let activation = |key: &str, v: &Option<String>| -> Result<Activation, JobError> {
        let name = v.as_deref().unwrap_or("tanh");
        Activation::parse(name)
            .ok_or_else(|| ctx.err(key, format!("unknown activation \"{}\"; valid: \"tanh\", \"softplus\", \"sigmoid\"", data::one_line(name))))
    };
    let name = g.loss.as_deref().unwrap_or("wasserstein");
    let loss = MlpLoss::parse(name).ok_or_else(|| {
        ctx.err(
            "game.loss",
            format!("unknown loss \"{}\"; valid: \"wasserstein\" (D(x) − D(G(z))), \"vanilla\" (log D(x) + log(1 − D(G(z))))", data::one_line(name)),
        )
    })?;
    Ok(ModelSpec::Mlp(MlpConfig {
        hidden_g: width("game.hidden_g", g.hidden_g)?,
        hidden_d: width("game.hidden_d", g.hidden_d)?,
        activation_g: activation("game.activation_g", &g.activation_g)?,
        activation_d: activation("game.activation_d", &g.activation_d)?,
        loss,
        ridge_theta,
        ridge_omega,
    }))
}

/// The starting point u0 from `sga.init`: a list of dim u numbers, or
/// "random" with `sga.init_scale` (default 1): for `mlp` every weight
/// N(0, scale²/fan-in) and every bias 0 ([`MlpConfig::random_init`]), for the
/// other models every coordinate N(0, scale²). The draw is the job seed's
/// dedicated data stream `Role::Data(2)` (latent samples use `Data(0)`, drawn
/// real samples `Data(1)`), so u0 is fixed by (seed, init_scale, model,
/// dimensions) and part of the job's identity.
#[allow(clippy::too_many_arguments)]
fn initial_point(ctx: &Ctx, s: &RawSga, model: &ModelSpec, seed: u64, dz: usize, dx: usize, dim: usize) -> Result<Vec<f64>, JobError> {
    let hint = "give a list of dim u numbers, or \"random\" (with sga.init_scale)";
    match &s.init {
        toml::Value::String(name) if name == "random" => {
            let scale = s.init_scale.unwrap_or(1.0);
            if !(scale.is_finite() && scale >= 0.0) {
                return Err(ctx.err("sga.init_scale", format!("{scale} must be a finite number ≥ 0")));
            }
            let mut rng = crate::rng::stream(seed, 0, crate::rng::Role::Data(2), 0);
            let mut normal = || crate::rng::normal(&mut rng);
            Ok(match model {
                ModelSpec::Mlp(c) => c.random_init(dz, dx, scale, normal),
                _ => (0..dim).map(|_| scale * normal()).collect(),
            })
        }
        toml::Value::String(name) => Err(ctx.err("sga.init", format!("\"{}\" is not a starting point; {hint}", data::one_line(name)))),
        toml::Value::Array(values) => {
            if s.init_scale.is_some() {
                return Err(ctx.err("sga.init_scale", "only used with sga.init = \"random\""));
            }
            values
                .iter()
                .map(|v| match v {
                    toml::Value::Float(x) => Ok(*x),
                    toml::Value::Integer(i) => Ok(*i as f64),
                    other => Err(ctx.err("sga.init", format!("{} is not a number; {hint}", data::one_line(&other.to_string())))),
                })
                .collect()
        }
        other => Err(ctx.err("sga.init", format!("{} is not a starting point; {hint}", data::one_line(&other.to_string())))),
    }
}

fn validate(raw: RawJob, path: &Path, base: &Path, name: String, text: String) -> Result<Job, JobError> {
    let ctx = Ctx { path };
    if raw.seed < 0 {
        return Err(ctx.err("seed", "must be a non-negative integer"));
    }
    let seed = raw.seed as u64;
    let mut warnings = Vec::new();

    // Data first: the model's dimensions come from it.
    let latent = source(&ctx, "data.latent", &raw.data.latent, base, seed, 0)?;
    let real = source(&ctx, "data.real", &raw.data.real, base, seed, 1)?;

    let g = &raw.game;
    let model = match g.model.as_str() {
        "lq" => {
            if g.ridge_theta.is_some() || g.ridge_omega.is_some() {
                return Err(ctx.err("game.ridge_theta", "ridge terms are not used by model \"lq\""));
            }
            let (a, c, d) = (matrix(&ctx, "game.A", &g.a)?, matrix(&ctx, "game.C", &g.c)?, matrix(&ctx, "game.D", &g.d)?);
            positive_definite(&ctx, "game.A", &a)?;
            positive_definite(&ctx, "game.D", &d)?;
            if c.rows != a.rows || c.cols != d.rows {
                return Err(ctx.err("game.C", format!("must be {}x{} (dim θ x dim ω), got {}x{}", a.rows, d.rows, c.rows, c.cols)));
            }
            if latent.dim != a.rows {
                return Err(ctx.err("data.latent", format!("samples have dimension {}, but model \"lq\" needs dim θ = {} (rows of A)", latent.dim, a.rows)));
            }
            if real.dim != d.rows {
                return Err(ctx.err("data.real", format!("samples have dimension {}, but model \"lq\" needs dim ω = {} (rows of D)", real.dim, d.rows)));
            }
            ModelSpec::Lq { a, c, d }
        }
        "tanh-wgan" | "mlp" => {
            for (k, p) in [("game.A", g.a.is_some()), ("game.C", g.c.is_some()), ("game.D", g.d.is_some())] {
                if p {
                    return Err(ctx.err(k, "only used by model \"lq\""));
                }
            }
            let (rt, ro) = (g.ridge_theta.unwrap_or(0.0), g.ridge_omega.unwrap_or(0.0));
            if !(rt >= 0.0 && ro >= 0.0 && rt.is_finite() && ro.is_finite()) {
                return Err(ctx.err("game.ridge_theta", "ridge weights must be finite and ≥ 0"));
            }
            if g.model == "mlp" {
                mlp_config(&ctx, g, rt, ro)?
            } else {
                ModelSpec::TanhWgan { ridge_theta: rt, ridge_omega: ro }
            }
        }
        other => return Err(ctx.err("game.model", format!("unknown model \"{other}\"; valid: \"lq\", \"tanh-wgan\", \"mlp\""))),
    };
    if !matches!(model, ModelSpec::Mlp(_)) {
        let mlp_keys = [("hidden_g", g.hidden_g.is_some()), ("hidden_d", g.hidden_d.is_some()), ("activation_g", g.activation_g.is_some())];
        let mlp_keys = mlp_keys.into_iter().chain([("activation_d", g.activation_d.is_some()), ("loss", g.loss.is_some())]);
        for (k, present) in mlp_keys {
            if present {
                return Err(ctx.err(&format!("game.{k}"), format!("only used by model \"mlp\" (this job has model = \"{}\")", g.model)));
            }
        }
    }
    let (dt, dw) = match &model {
        ModelSpec::Lq { a, d, .. } => (a.rows, d.rows),
        ModelSpec::TanhWgan { .. } => (real.dim * latent.dim, real.dim),
        ModelSpec::Mlp(c) => c.dims(latent.dim, real.dim),
    };

    let s = &raw.sga;
    if s.schemes.is_empty() {
        return Err(ctx.err("sga.schemes", "name at least one scheme: \"alt\", \"sml\""));
    }
    let mut schemes = Vec::new();
    for sc in &s.schemes {
        let v = match sc.as_str() {
            "alt" => Scheme::Alt,
            "sml" => Scheme::Sml,
            o => return Err(ctx.err("sga.schemes", format!("unknown scheme \"{o}\"; valid: \"alt\", \"sml\""))),
        };
        if schemes.contains(&v) {
            return Err(ctx.err("sga.schemes", format!("\"{sc}\" is listed twice")));
        }
        schemes.push(v);
    }
    if s.batch < 1 {
        return Err(ctx.err("sga.batch", format!("B = {} is not allowed; the minibatch size must be at least 1", s.batch)));
    }
    let batch = s.batch as usize;
    let horizon = s.horizon;
    if !(horizon.is_finite() && horizon > 0.0) {
        return Err(ctx.err("sga.horizon", format!("T = {horizon} must be a positive number")));
    }
    if s.eta.is_empty() {
        return Err(ctx.err("sga.eta", "give at least one learning rate"));
    }
    let mut steps = Vec::new();
    for &eta in &s.eta {
        if !(eta.is_finite() && eta > 0.0) {
            return Err(ctx.err("sga.eta", format!("η = {eta} is not allowed; every η must be > 0")));
        }
        if eta > horizon {
            return Err(ctx.err("sga.eta", format!("η = {eta} exceeds the horizon T = {horizon}; need 0 < η ≤ T")));
        }
        let n = (horizon / eta).round();
        if (n * eta - horizon).abs() > 1e-9 * horizon {
            let (lo, hi) = ((horizon / eta).floor().max(1.0), (horizon / eta).ceil());
            return Err(ctx.err(
                "sga.eta",
                format!(
                    "η = {eta} does not divide T = {horizon} (T/η = {}); the number of steps must be whole: use η = T/n, e.g. η = {} (n = {hi}) or {} (n = {lo})",
                    horizon / eta,
                    horizon / hi,
                    horizon / lo
                ),
            ));
        }
        if n > MAX_STEPS as f64 {
            return Err(ctx.err(
                "sga.horizon, sga.eta",
                format!("T/η = {n:.3e} steps (T = {}, η = {}); at most 2^40 ≈ 1.1e12 steps per chain", short_number(horizon), short_number(eta)),
            ));
        }
        if eta >= horizon.min(1.0) {
            warnings.push(format!("η = {eta} ≥ min(1, T): outside the range of the paper's theorems"));
        }
        steps.push(n as usize);
    }
    for (i, a) in s.eta.iter().enumerate() {
        if s.eta[..i].contains(a) {
            return Err(ctx.err("sga.eta", format!("η = {a} is listed twice")));
        }
    }
    let init = initial_point(&ctx, s, &model, seed, latent.dim, real.dim, dt + dw)?;
    if init.len() != dt + dw {
        return Err(ctx.err("sga.init", format!("has {} entries, but u = (θ, ω) has dim θ + dim ω = {} + {} = {}", init.len(), dt, dw, dt + dw)));
    }
    if init.iter().any(|v| !v.is_finite()) {
        return Err(ctx.err("sga.init", "entries must be finite"));
    }

    let sd = &raw.sde;
    let integrator = match sd.integrator.as_deref().unwrap_or("richardson") {
        "richardson" => Integrator::Richardson,
        "euler" => Integrator::Euler,
        "exact" => Integrator::Exact,
        o => return Err(ctx.err("sde.integrator", format!("unknown integrator \"{o}\"; valid: \"richardson\", \"euler\", \"exact\" (lq only)"))),
    };
    if integrator == Integrator::Exact && !matches!(model, ModelSpec::Lq { .. }) {
        return Err(ctx.err("sde.integrator", "\"exact\" needs the linear game \"lq\"; use \"euler\" (or \"richardson\" in a weak-error study)"));
    }
    let substeps = sd.substeps.unwrap_or(1);
    if !(1..=1_000_000).contains(&substeps) {
        return Err(ctx.err("sde.substeps", format!("{substeps} is not allowed; need an integer in 1..=1000000")));
    }
    if let Some(h) = sd.max_step {
        if !(h.is_finite() && h > 0.0) {
            return Err(ctx.err("sde.max_step", format!("{h} must be a positive step length")));
        }
        if s.eta.iter().any(|&eta| (eta / h) > 1e6) {
            return Err(ctx.err("sde.max_step", format!("{h} would need more than 10^6 substeps per η")));
        }
    }
    let noise = match sd.noise.as_deref().unwrap_or("block") {
        "block" => Noise::Block,
        "full" => Noise::Full,
        o => return Err(ctx.err("sde.noise", format!("unknown noise \"{o}\"; valid: \"block\", \"full\""))),
    };
    let drift = |key: &str, v: &Option<String>, dflt: Drift| -> Result<Drift, JobError> {
        match v.as_deref() {
            None => Ok(dflt),
            Some("second-order") => Ok(Drift::SecondOrder),
            Some("first-order") => Ok(Drift::FirstOrder),
            Some("modified") => Ok(Drift::Modified),
            Some(o) => {
                Err(ctx.err(key, format!("unknown drift \"{o}\"; valid: \"second-order\" (b0 + η b1), \"first-order\" (b0), \"modified\" (b0 − η/2 ∇b0 b0)")))
            }
        }
    };
    let sde = SdeConfig {
        integrator,
        substeps: substeps as usize,
        max_step: sd.max_step,
        noise,
        alt_drift: drift("sde.alt_drift", &sd.alt_drift, Drift::SecondOrder)?,
        sml_drift: drift("sde.sml_drift", &sd.sml_drift, Drift::FirstOrder)?,
    };

    if raw.estimate.is_some() && raw.long_run.is_some() {
        return Err(ctx.err("long_run", "a job is either a weak-error study ([estimate]) or a long-run study ([long_run]), not both; split it into two files"));
    }
    if raw.estimate.is_none() && raw.long_run.is_none() {
        return Err(ctx.err("estimate", "missing: give [estimate] for a weak-error study or [long_run] for a long-run study"));
    }
    // A long-run job has no [estimate]: its checks below run on a stand-in that always passes.
    let stand_in = RawEstimate {
        paths: 2,
        sde_paths: None,
        block: None,
        target_se: None,
        target_rel_ci: None,
        max_paths: None,
        record_times: None,
        functions: vec!["norm2".into()],
        confidence: None,
    };
    let e = raw.estimate.as_ref().unwrap_or(&stand_in);
    if e.paths < 2 {
        return Err(ctx.err("estimate.paths", format!("{} paths is not allowed; need at least 2 (a standard error needs at least 2 paths)", e.paths)));
    }
    let sde_paths = e.sde_paths.unwrap_or(e.paths);
    if sde_paths < 2 {
        return Err(ctx.err("estimate.sde_paths", format!("{sde_paths} paths is not allowed; need at least 2 (a standard error needs at least 2 paths)")));
    }
    let block = e.block.unwrap_or(DEFAULT_BLOCK as i64);
    if block < 1 {
        return Err(ctx.err("estimate.block", format!("{block} is not a positive block size")));
    }
    if block as u64 > crate::rng::MAX_CHAIN {
        return Err(ctx.err("estimate.block", format!("{block} chains per block is beyond the stream layout (at most 2^40 − 1 chains)")));
    }
    if (e.paths.max(sde_paths) as u64).div_ceil(block as u64) > crate::rng::MAX_CHAIN / block as u64 {
        return Err(ctx.err("estimate.paths", "too many paths for the stream layout (2^40 chains)"));
    }
    let target = match (e.target_se, e.target_rel_ci) {
        (Some(_), Some(_)) => return Err(ctx.err("estimate.target_rel_ci", "give either target_se or target_rel_ci, not both")),
        (Some(t), None) if t.is_finite() && t > 0.0 => Some(Target::StdError(t)),
        (Some(t), None) => return Err(ctx.err("estimate.target_se", format!("{t} must be a positive standard error"))),
        (None, Some(r)) if r.is_finite() && r > 0.0 => Some(Target::RelativeCi(r)),
        (None, Some(r)) => return Err(ctx.err("estimate.target_rel_ci", format!("{r} must be a positive fraction of |e|"))),
        (None, None) => None,
    };
    let max_paths = match (e.max_paths, target) {
        (Some(m), _) if m < 2 => {
            return Err(ctx.err("estimate.max_paths", format!("{m} paths is not allowed; need at least 2 (a standard error needs at least 2 paths)")))
        }
        (Some(_), None) => return Err(ctx.err("estimate.max_paths", "only used with target_se or target_rel_ci")),
        (Some(m), Some(_)) if m < e.paths => return Err(ctx.err("estimate.max_paths", format!("{m} is below estimate.paths = {}", e.paths))),
        (Some(m), Some(_)) => m as u64,
        (None, _) => 100 * e.paths as u64,
    };
    if max_paths.max(sde_paths as u64 * max_paths.div_ceil(e.paths as u64)) / (block as u64) > crate::rng::MAX_CHAIN / 2 / block as u64 {
        return Err(ctx.err("estimate.max_paths", "too many paths for the stream layout (2^40 chains)"));
    }
    let mut record_times = e.record_times.clone().unwrap_or_else(|| vec![horizon]);
    record_times.sort_by(f64::total_cmp);
    record_times.dedup();
    if record_times.is_empty() {
        return Err(ctx.err("estimate.record_times", "give at least one time, or leave it out for the final time T"));
    }
    for &t in &record_times {
        if !(t > 0.0 && t <= horizon * (1.0 + 1e-12)) {
            return Err(ctx.err("estimate.record_times", format!("t = {t} is outside (0, T = {horizon}]")));
        }
        for &eta in &s.eta {
            let n = (t / eta).round();
            if (n * eta - t).abs() > 1e-9 * t.max(eta) {
                return Err(ctx.err("estimate.record_times", format!("t = {t} is not a whole number of steps at η = {eta}")));
            }
        }
    }
    if e.functions.is_empty() {
        return Err(ctx.err("estimate.functions", "name at least one test function (e.g. \"theta1\", \"norm2\", \"theta1*omega1\", \"loss\")"));
    }
    let functions =
        e.functions.iter().map(|f| parse_function(f, dt, dw).map_err(|m| ctx.err("estimate.functions", data::one_line(&m)))).collect::<Result<Vec<_>, _>>()?;
    // u_k u_l = u_l u_k, and thetaK / omegaK / uK name the same coordinates.
    let same = |a: &TestFunction, b: &TestFunction| match (a, b) {
        (TestFunction::Product(i, j), TestFunction::Product(k, l)) => (i, j) == (k, l) || (i, j) == (l, k),
        _ => a == b,
    };
    for (i, f) in functions.iter().enumerate() {
        if let Some(j) = functions[..i].iter().position(|g| same(g, f)) {
            let (a, b) = (e.functions[j].trim(), e.functions[i].trim());
            let message = if a == b { format!("\"{a}\" is listed twice") } else { format!("\"{b}\" is the same test function as \"{a}\"; list each once") };
            return Err(ctx.err("estimate.functions", data::one_line(&message)));
        }
    }
    let confidence = e.confidence.unwrap_or(0.95);
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(ctx.err("estimate.confidence", format!("{confidence} must lie strictly between 0 and 1")));
    }

    let bound = raw.divergence.bound.unwrap_or(DEFAULT_BOUND);
    if !(bound > 0.0) {
        return Err(ctx.err("divergence.bound", "must be a positive number"));
    }
    let u0 = init.iter().map(|v| v * v).sum::<f64>().sqrt();
    if !(bound > u0) {
        return Err(
            ctx.err("divergence.bound", format!("{bound} must exceed |u0| = {u0} (the Euclidean norm of sga.init), or every chain diverges at the start"))
        );
    }
    let stop = match raw.divergence.action.as_deref().unwrap_or("stop") {
        "stop" => true,
        "count" => false,
        o => return Err(ctx.err("divergence.action", format!("unknown action \"{o}\"; valid: \"stop\", \"count\""))),
    };

    let long_run = match &raw.long_run {
        Some(lr) => {
            let mut lr = long_run::validate(&ctx, lr, &s.eta, horizon, batch, schemes.contains(&Scheme::Sml), dt, dw)?;
            if !stop {
                return Err(ctx.err(
                    "divergence.action",
                    "\"count\" is for weak-error studies; a long-run study stops at the first diverging chain (its samples would have holes)",
                ));
            }
            for (key, n) in [("long_run.chains", lr.chains), ("long_run.sde_paths", lr.sde_paths)] {
                if n > crate::rng::MAX_CHAIN {
                    return Err(ctx.err(key, format!("{n} is too many for the stream layout (at most 2^40 paths)")));
                }
            }
            // Samples need one path per SDE: Richardson combines two paths.
            match sd.integrator.as_deref() {
                None => {}
                Some("richardson") => {
                    return Err(ctx.err(
                        "sde.integrator",
                        "\"richardson\" combines two paths, but a long-run study stores sample paths: use \"euler\" (the default there) or \"exact\" (lq)",
                    ))
                }
                _ => {}
            }
            lr.half_step &= integrator != Integrator::Exact;
            Some(lr)
        }
        None => None,
    };
    let mut sde = sde;
    if long_run.is_some() && sd.integrator.is_none() {
        sde.integrator = Integrator::Euler;
    }

    Ok(Job {
        text,
        fingerprint: 0,
        name,
        seed,
        model,
        latent,
        real,
        schemes,
        batch,
        etas: s.eta.clone(),
        steps,
        horizon,
        init,
        sde,
        paths: e.paths as u64,
        sde_paths: sde_paths as u64,
        block: block as u64,
        target,
        max_paths,
        record_times,
        function_names: e.functions.iter().map(|f| f.trim().to_string()).collect(),
        functions,
        confidence,
        divergence: DivergencePolicy { bound, stop },
        has_estimate: raw.estimate.is_some(),
        long_run,
        warnings,
    })
}
