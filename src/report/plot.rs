//! PNG and SVG plots of a study file (DESIGN §4: "PNG and SVG plots beside
//! each study"), drawn with plotters in pure Rust. Text is rendered by
//! plotters' `ab_glyph` backend with DejaVu Sans compiled into the binary
//! (`assets/DejaVuSans.ttf`, licence beside it), so plotting needs no
//! fontconfig, freetype or installed fonts; SVG files keep their text as
//! `<text>` elements (font-family sans-serif).
//!
//! [`plot_study`] reads a weak-error or long-run results file (told apart by
//! its root attribute `study`) and writes every plot as `<name>.png` and
//! `<name>.svg`:
//!
//! - weak-error: `weak_error_<scheme>` (with `_t<t>` appended when the file
//!   has several record times): |weak error| against η on log-log axes, one
//!   series per test function with ± z·SE bars, filled markers for resolved
//!   points and hollow ones for unresolved points, the weighted fit of each
//!   series (its order in the legend), and dashed reference slopes 1 and 2.
//!   Bars and points at or below zero are clipped to the bottom of the axis
//!   (a bar without a lower cap reaches below it).
//! - long-run (from the `analysis/` group):
//!   - `marginals_<scheme>`: per coordinate (at most [`MAX_PANELS`], the
//!     first ones for bigger models; the title says so), the stationary
//!     histogram densities of the scheme's kinds overlaid: μ_η (SGA chains),
//!     μ* (SDE paths), and where present the half-step SDE and the
//!     scheduled chains; the panel caption gives W1(μ_η, μ*);
//!   - `beta_<kind>` for every kind with β(s): β(s) per projection with its
//!     floor and, where a rate was fitted, the exponential fit (rate ± SE in
//!     the legend);
//!   - `convergence_<kind>`: W1(law at t, late-time law) per coordinate on a
//!     log axis with its floor, the fitted exponential rate and the burn-in;
//!   - `eta_schedule_<kind>` for scheduled kinds: the mean learning rate.

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::stats::mixing::{fit_decay_rate, FLOOR_FACTOR};

/// The bundled font (DejaVu Sans; licence in assets/DejaVuSans-LICENSE.txt).
const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FONT: &str = "sans-serif";

/// Pixel size of a single-panel plot (weak error, β(s), learning-rate schedule).
pub const PLOT_SIZE: (u32, u32) = (1000, 700);
/// Pixel size of one panel of a grid (marginals, convergence).
pub const PANEL_SIZE: (u32, u32) = (460, 340);
/// Height of the title band at the top of every plot (one or two lines).
pub const GRID_TITLE_HEIGHT: u32 = 60;
/// At most this many coordinates get a panel (the first ones).
pub const MAX_PANELS: usize = 12;

/// A study file that cannot be plotted, or a plot that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{}: does not exist", .0.display())]
    Missing(PathBuf),
    #[error("{}: {message}", file.display())]
    NotResults { file: PathBuf, message: String },
    #[error("{}: cannot read {item}: {message}", file.display())]
    Read { file: PathBuf, item: String, message: String },
    #[error("cannot create the plot folder {}: {message}", dir.display())]
    Dir { dir: PathBuf, message: String },
    #[error("cannot write {}: {message}", file.display())]
    Write { file: PathBuf, message: String },
    #[error("the bundled plot font (assets/DejaVuSans.ttf) cannot be loaded")]
    Font,
}

/// Removes the plots gansde drew into `dir` for a `study` ("weak-error" or
/// "long-run") whose results are gone; other files stay.
pub fn remove_plots(dir: &Path, study: &str) -> std::io::Result<()> {
    if !dir.join(super::plot_manifest::MANIFEST).is_file() {
        return Ok(());
    }
    super::plot_manifest::replace_earlier_plots(dir, study, &[])
}

impl PlotError {
    /// Whether the fault is in what was asked for (the results file given),
    /// rather than in writing the plots.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PlotError::Missing(_) | PlotError::NotResults { .. } | PlotError::Read { .. })
    }
}

/// Writes every plot for the study file `results` (weak-error or long-run,
/// told apart by its root attribute `study`) as PNG and SVG into `dir`
/// (created if needed); returns the files written.
///
/// Earlier plots of the same kind of study in `dir` (e.g. of a scheme or
/// kind the new study does not have) are removed, so none linger beside the
/// new ones; `dir/.gansde-plots` lists what gansde drew, and every other file
/// there is left alone whatever its name.
pub fn plot_study(results: &Path, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    if !results.exists() {
        return Err(PlotError::Missing(results.to_path_buf()));
    }
    let h5 = H5::open(results)?;
    let study = h5
        .root_attr_str("study")
        .map_err(|_| PlotError::NotResults { file: results.to_path_buf(), message: "not a gansde results file (no root attribute `study`)".into() })?;
    register_font()?;
    let mut out = Vec::new();
    match study.as_str() {
        "weak-error" => {
            let we = read_weak_error(&h5)?;
            create_dir(dir)?;
            for fig in weak_error_figures(&we) {
                render(&fig, dir, &mut out)?;
            }
        }
        "long-run" => {
            let lr = read_long_run(&h5)?;
            create_dir(dir)?;
            for fig in marginal_figures(&lr) {
                render(&fig, dir, &mut out)?;
            }
            for fig in beta_figures(&lr) {
                render(&fig, dir, &mut out)?;
            }
            for fig in convergence_figures(&lr) {
                render(&fig, dir, &mut out)?;
            }
            for fig in schedule_figures(&lr) {
                render(&fig, dir, &mut out)?;
            }
        }
        other => {
            return Err(PlotError::NotResults {
                file: results.to_path_buf(),
                message: format!("unknown study kind {other:?} (root attribute `study`); plots are drawn for weak-error and long-run files"),
            })
        }
    }
    super::plot_manifest::replace_earlier_plots(dir, &study, &out)
        .map_err(|e| PlotError::Write { file: dir.join(super::plot_manifest::MANIFEST), message: one_line(e.to_string()) })?;
    Ok(out)
}

/// The pixel size of a grid of `panels` panels (columns by [`grid_columns`]).
pub fn grid_size(panels: usize) -> (u32, u32) {
    let (rows, cols) = grid_shape(panels);
    (cols as u32 * PANEL_SIZE.0, rows as u32 * PANEL_SIZE.1 + GRID_TITLE_HEIGHT)
}

/// Columns of a grid of `panels` panels: 1–3 in a row, 4 as 2 × 2, up to 6
/// in rows of 3, more in rows of 4.
pub fn grid_columns(panels: usize) -> usize {
    match panels {
        0..=3 => panels.max(1),
        4 => 2,
        5 | 6 => 3,
        _ => 4,
    }
}

fn grid_shape(panels: usize) -> (usize, usize) {
    let cols = grid_columns(panels);
    (panels.max(1).div_ceil(cols), cols)
}

fn register_font() -> Result<(), PlotError> {
    static DONE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *DONE.get_or_init(|| plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(PlotError::Font)
    }
}

fn create_dir(dir: &Path) -> Result<(), PlotError> {
    if dir.exists() && !dir.is_dir() {
        return Err(PlotError::Dir { dir: dir.to_path_buf(), message: "a file has that name".into() });
    }
    std::fs::create_dir_all(dir).map_err(|e| PlotError::Dir { dir: dir.to_path_buf(), message: e.to_string() })
}

// ---------------------------------------------------------------------------
// Reading

struct H5 {
    path: PathBuf,
    file: hdf5::File,
}

fn one_line(e: impl std::fmt::Display) -> String {
    crate::data::one_line(&e.to_string())
}

impl H5 {
    fn open(path: &Path) -> Result<Self, PlotError> {
        let file = hdf5::File::open(path).map_err(|e| PlotError::NotResults {
            file: path.to_path_buf(),
            message: format!("not a gansde results file (cannot open as HDF5: {})", one_line(e)),
        })?;
        Ok(H5 { path: path.to_path_buf(), file })
    }

    fn err(&self, item: &str, message: impl std::fmt::Display) -> PlotError {
        PlotError::Read { file: self.path.clone(), item: item.to_string(), message: one_line(message) }
    }

    fn root_attr_str(&self, name: &str) -> hdf5::Result<String> {
        Ok(self.file.attr(name)?.read_scalar::<VarLenUnicode>()?.to_string())
    }

    fn dataset(&self, name: &str) -> Result<hdf5::Dataset, PlotError> {
        self.file.dataset(name).map_err(|e| self.err(&format!("dataset {name}"), e))
    }

    fn has(&self, name: &str) -> bool {
        self.file.link_exists(name)
    }

    /// A numeric dataset as f64 (integer types converted) with its shape.
    fn f64s(&self, name: &str) -> Result<(Vec<f64>, Vec<usize>), PlotError> {
        let ds = self.dataset(name)?;
        let shape = ds.shape();
        let v = ds.read_raw::<f64>().map_err(|e| self.err(&format!("dataset {name}"), e))?;
        Ok((v, shape))
    }

    /// A numeric dataset whose shape must be `shape`.
    fn f64s_shaped(&self, name: &str, shape: &[usize]) -> Result<Vec<f64>, PlotError> {
        let (v, s) = self.f64s(name)?;
        if s != shape {
            return Err(self.err(&format!("dataset {name}"), format!("shape {s:?}, expected {shape:?}")));
        }
        Ok(v)
    }

    fn strings(&self, name: &str) -> Result<Vec<String>, PlotError> {
        let ds = self.dataset(name)?;
        let v = ds.read_raw::<VarLenUnicode>().map_err(|e| self.err(&format!("dataset {name}"), e))?;
        Ok(v.iter().map(|s| s.to_string()).collect())
    }

    fn attr_str(&self, object: &str, name: &str) -> Result<String, PlotError> {
        let item = format!("attribute {name} of {object}");
        let loc = self.file.group(object).map(|g| g.attr(name)).or_else(|_| self.file.dataset(object).map(|d| d.attr(name)));
        let a = loc.and_then(|a| a).map_err(|e| self.err(&item, e))?;
        Ok(a.read_scalar::<VarLenUnicode>().map_err(|e| self.err(&item, e))?.to_string())
    }

    fn attr_f64(&self, object: &str, name: &str) -> Result<f64, PlotError> {
        let item = format!("attribute {name} of {object}");
        let loc = self.file.group(object).map(|g| g.attr(name)).or_else(|_| self.file.dataset(object).map(|d| d.attr(name)));
        let a = loc.and_then(|a| a).map_err(|e| self.err(&item, e))?;
        a.read_scalar::<f64>().map_err(|e| self.err(&item, e))
    }
}

/// One scheme of a weak-error file.
struct WeScheme {
    name: String,
    drift: String,
    noise: String,
    integrator: String,
    paper_order: f64,
    confidence: f64,
    z: f64,
    /// [n_eta, n_rec, n_f] row-major.
    e: Vec<f64>,
    se: Vec<f64>,
    resolved: Vec<f64>,
    /// [n_rec, n_f].
    order: Vec<f64>,
    half_width: Vec<f64>,
    points: Vec<f64>,
}

struct WeakError {
    eta: Vec<f64>,
    record_time: Vec<f64>,
    functions: Vec<String>,
    schemes: Vec<WeScheme>,
}

fn read_weak_error(h: &H5) -> Result<WeakError, PlotError> {
    let (eta, _) = h.f64s("weak_error/eta")?;
    let (record_time, _) = h.f64s("weak_error/record_time")?;
    let functions = h.strings("weak_error/test_function")?;
    let (ne, nr, nf) = (eta.len(), record_time.len(), functions.len());
    let group = h.file.group("weak_error").map_err(|e| h.err("group weak_error", e))?;
    let mut names = group.member_names().map_err(|e| h.err("group weak_error", e))?;
    names.retain(|n| group.group(n).is_ok());
    // The schemes in the job's usual order (alt before sml), others after.
    names.sort_by_key(|n| (["alt", "sml"].iter().position(|s| s == n).unwrap_or(2), n.clone()));
    if names.is_empty() {
        return Err(h.err("group weak_error", "no scheme groups"));
    }
    let mut schemes = Vec::new();
    for name in names {
        let g = format!("weak_error/{name}");
        let cells = [ne, nr, nf];
        let fits = [nr, nf];
        schemes.push(WeScheme {
            drift: h.attr_str(&g, "drift")?,
            noise: h.attr_str(&g, "noise")?,
            integrator: h.attr_str(&g, "integrator")?,
            paper_order: h.attr_f64(&g, "paper_order")?,
            confidence: h.attr_f64(&g, "confidence")?,
            z: h.attr_f64(&g, "z")?,
            e: h.f64s_shaped(&format!("{g}/weak_error"), &cells)?,
            se: h.f64s_shaped(&format!("{g}/standard_error"), &cells)?,
            resolved: h.f64s_shaped(&format!("{g}/resolved"), &cells)?,
            order: h.f64s_shaped(&format!("{g}/order"), &fits)?,
            half_width: h.f64s_shaped(&format!("{g}/order_half_width"), &fits)?,
            points: h.f64s_shaped(&format!("{g}/order_points"), &fits)?,
            name,
        });
    }
    Ok(WeakError { eta, record_time, functions, schemes })
}

/// One kind (ensemble) of a long-run file's analysis.
struct Kind {
    name: String,
    source: String,
    scheme: String,
    drift: String,
    step: f64,
    /// Per coordinate.
    hist_edges: Vec<Vec<f64>>,
    hist_density: Vec<Vec<f64>>,
    conv: Vec<Vec<f64>>,
    conv_floor: Vec<f64>,
    conv_rate: Vec<f64>,
    conv_rate_se: Vec<f64>,
    /// Per projection, per lag.
    beta: Vec<Vec<f64>>,
    beta_floor: Vec<Vec<f64>>,
    beta_rate: Vec<f64>,
    beta_rate_se: Vec<f64>,
    eta_mean: Vec<f64>,
}

struct LongRun {
    eta: f64,
    dim_theta: usize,
    dim: usize,
    burn_in: f64,
    record_time: Vec<f64>,
    lag_time: Vec<f64>,
    projections: Vec<String>,
    kinds: Vec<Kind>,
    /// (SGA kind, SDE kind, W1 per coordinate, its noise level per coordinate; empty if not stored).
    w1: Vec<(String, String, Vec<f64>, Vec<f64>)>,
}

fn rows(v: Vec<f64>, n: usize, w: usize) -> Vec<Vec<f64>> {
    (0..n).map(|i| v[i * w..(i + 1) * w].to_vec()).collect()
}

fn read_long_run(h: &H5) -> Result<LongRun, PlotError> {
    let root_f64 = |n: &str| h.file.attr(n).and_then(|a| a.read_scalar::<f64>()).map_err(|e| h.err(&format!("root attribute {n}"), e));
    let root_u64 = |n: &str| h.file.attr(n).and_then(|a| a.read_scalar::<u64>()).map_err(|e| h.err(&format!("root attribute {n}"), e));
    let eta = root_f64("eta")?;
    let burn_in = root_f64("burn_in")?;
    let dim_theta = root_u64("dim_theta")? as usize;
    let (record_time, _) = h.f64s("record_time")?;
    if !h.has("analysis") {
        return Err(
            h.err("group analysis", "missing (the study was run with --skip-analysis, or its analysis has not finished; run `gansde analyze` on it first)")
        );
    }
    let (lag_time, _) = h.f64s("analysis/lag_time")?;
    let projections = if h.has("projection_names") { h.strings("projection_names")? } else { Vec::new() };
    let group = h.file.group("analysis").map_err(|e| h.err("group analysis", e))?;
    let mut names = group.member_names().map_err(|e| h.err("group analysis", e))?;
    names.retain(|n| n != "w1_sga_sde" && n != "w1_noise" && group.group(n).is_ok());
    if names.is_empty() {
        return Err(h.err("group analysis", "no kinds"));
    }
    let (nr, nl) = (record_time.len(), lag_time.len());
    let mut dim = None;
    let mut kinds = Vec::new();
    for name in names {
        let g = format!("analysis/{name}");
        let (mean, _) = h.f64s(&format!("{g}/mean"))?;
        let d = *dim.get_or_insert(mean.len());
        if mean.len() != d {
            return Err(h.err(&format!("dataset {g}/mean"), format!("{} coordinates, other kinds have {d}", mean.len())));
        }
        let (_, es) = h.f64s(&format!("{g}/hist_edges"))?;
        let nb = es.get(1).copied().unwrap_or(1).max(1) - 1;
        let edges = h.f64s_shaped(&format!("{g}/hist_edges"), &[d, nb + 1])?;
        let dens = h.f64s_shaped(&format!("{g}/hist_density"), &[d, nb])?;
        let conv = h.f64s_shaped(&format!("{g}/convergence_w1"), &[d, nr])?;
        let (beta, bs) = h.f64s(&format!("{g}/beta"))?;
        let np = bs.first().copied().unwrap_or(0);
        if bs.len() != 2 || bs[1] != nl && np > 0 {
            return Err(h.err(&format!("dataset {g}/beta"), format!("shape {bs:?}, expected [projections, {nl}]")));
        }
        let beta_floor = h.f64s_shaped(&format!("{g}/beta_floor"), &[np, nl])?;
        // The scheme is an attribute of the sample datasets; the kind's name carries it too.
        let scheme = if h.has(&format!("samples/{name}")) { h.attr_str(&format!("samples/{name}"), "scheme").ok() } else { None };
        let scheme = scheme.unwrap_or_else(|| name.split('_').nth(1).unwrap_or("?").to_string());
        kinds.push(Kind {
            source: h.attr_str(&g, "source")?,
            drift: h.attr_str(&g, "drift")?,
            step: h.attr_f64(&g, "step")?,
            scheme,
            hist_edges: rows(edges, d, nb + 1),
            hist_density: rows(dens, d, nb),
            conv: rows(conv, d, nr),
            conv_floor: h.f64s_shaped(&format!("{g}/convergence_floor"), &[d])?,
            conv_rate: h.f64s_shaped(&format!("{g}/convergence_rate"), &[d])?,
            conv_rate_se: h.f64s_shaped(&format!("{g}/convergence_rate_se"), &[d])?,
            beta: rows(beta, np, nl),
            beta_floor: rows(beta_floor, np, nl),
            beta_rate: h.f64s_shaped(&format!("{g}/beta_rate"), &[np])?,
            beta_rate_se: h.f64s_shaped(&format!("{g}/beta_rate_se"), &[np])?,
            eta_mean: if h.has(&format!("{g}/eta_mean")) { h.f64s(&format!("{g}/eta_mean"))?.0 } else { Vec::new() },
            name,
        });
    }
    let mut w1 = Vec::new();
    if h.has("analysis/w1_sga_sde") {
        let g = h.file.group("analysis/w1_sga_sde").map_err(|e| h.err("group analysis/w1_sga_sde", e))?;
        for n in g.member_names().map_err(|e| h.err("group analysis/w1_sga_sde", e))? {
            let path = format!("analysis/w1_sga_sde/{n}");
            let (v, _) = h.f64s(&path)?;
            let noise_path = format!("analysis/w1_noise/{n}");
            let noise = if h.has(&noise_path) { h.f64s_shaped(&noise_path, &[v.len()])? } else { Vec::new() };
            w1.push((n, h.attr_str(&path, "sde")?, v, noise));
        }
    }
    Ok(LongRun { eta, dim_theta, dim: dim.unwrap_or(0), burn_in, record_time, lag_time, projections, kinds, w1 })
}

// ---------------------------------------------------------------------------
// Rendering

/// A drawing failure as text (the backends' error types differ).
struct DrawError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for DrawError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        DrawError(e.to_string())
    }
}

type Area<DB> = DrawingArea<DB, Shift>;

/// Draws `title` centred in a band of GRID_TITLE_HEIGHT pixels at the top and
/// returns the area below. A title too wide for one line is split after its
/// " — " (or in the middle), and the font shrinks until each line fits.
fn title_band<DB: DrawingBackend>(root: &Area<DB>, title: &str) -> Result<Area<DB>, DrawError> {
    let (top, rest) = root.split_vertically(GRID_TITLE_HEIGHT);
    let (w, h) = top.dim_in_pixel();
    let avail = w.saturating_sub(20);
    let width = |t: &str, size: u32| top.estimate_text_size(t, &font(size)).map(|d| d.0);
    let mut lines = vec![title.to_string()];
    if width(title, 20)? > avail {
        let cut = title.find(" — ").map(|i| (i, i + " — ".len())).or_else(|| {
            let mid = title.len() / 2;
            title[mid..].find(' ').map(|i| (mid + i, mid + i + 1))
        });
        if let Some((a, b)) = cut {
            lines = vec![title[..a].to_string(), title[b..].to_string()];
        }
    }
    let mut size = 20;
    while size > 11 && lines.iter().map(|l| width(l, size)).collect::<Result<Vec<_>, _>>()?.into_iter().max().unwrap_or(0) > avail {
        size -= 1;
    }
    let step = size as i32 + 6;
    let y0 = h as i32 / 2 - step * (lines.len() as i32 - 1) / 2;
    for (i, l) in lines.iter().enumerate() {
        top.draw(&Text::new(l.clone(), (w as i32 / 2, y0 + i as i32 * step), font(size).pos(Pos::new(HPos::Center, VPos::Center))))?;
    }
    Ok(rest)
}

/// A plot that draws itself on any backend (PNG and SVG alike).
trait Figure {
    /// File name without extension.
    fn stem(&self) -> String;
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError>;
}

fn render<F: Figure>(fig: &F, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PlotError> {
    let stem = fig.stem();
    let size = fig.size();
    let write_err = |file: &Path, m: String| PlotError::Write { file: file.to_path_buf(), message: one_line(m) };
    let png = dir.join(format!("{stem}.png"));
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| write_err(&png, e.to_string()))?;
        fig.draw(&root).map_err(|e| write_err(&png, e.0))?;
        root.present().map_err(|e| write_err(&png, e.to_string()))?;
    }
    out.push(png);
    let svg = dir.join(format!("{stem}.svg"));
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| write_err(&svg, e.to_string()))?;
        fig.draw(&root).map_err(|e| write_err(&svg, e.0))?;
        root.present().map_err(|e| write_err(&svg, e.to_string()))?;
    }
    out.push(svg);
    Ok(())
}

/// Ten distinguishable colours (the "tab10" palette).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const GREY: RGBColor = RGBColor(90, 90, 90);

fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// The chart of one panel of a grid (marginals, convergence): a caption of
/// `caption_size` and room for `y_label_area` pixels of y tick labels.
fn panel_chart<'a, 'b, DB: DrawingBackend>(area: &'a Area<DB>, caption: &str, caption_size: u32, y_label_area: u32) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, font(caption_size))
        .margin(8)
        // Room for the last x tick label (e.g. "200"), centred on the right edge.
        .margin_right(20)
        .x_label_area_size(40)
        .y_label_area_size(y_label_area);
    builder
}

fn font(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().color(&BLACK)
}

/// A number for a tick label or a legend: plain decimals from 1e-3 to 1e5, otherwise "2.5e-4".
fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return "—".into();
    }
    let a = v.abs();
    if (1e-3..1e5).contains(&a) {
        let s = format!("{:.*}", (4 - a.log10().floor() as i32).max(0) as usize, v);
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        return s;
    }
    let e = a.log10().floor();
    let m = v / 10f64.powf(e);
    let m = if (m.round() - m).abs() < 1e-9 {
        format!("{}", m.round())
    } else {
        let t = format!("{m:.2}");
        t.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    format!("{m}e{e}")
}

/// A tick label on a linear axis spanning `span`: rounding noise around zero shows as "0".
fn fmt_lin(v: f64, span: f64) -> String {
    if v.abs() <= span.abs() * 1e-9 {
        "0".into()
    } else {
        fmt_num(v)
    }
}

/// `v` to `n` significant digits: plain decimals from 1e-3 to 1e5, otherwise "2.5e-4".
fn sig(v: f64, n: i32) -> String {
    if v == 0.0 || !v.is_finite() || !(1e-3..1e5).contains(&v.abs()) {
        let r = if v == 0.0 || !v.is_finite() { v } else { round_sig(v, n) };
        return fmt_num(r);
    }
    let s = format!("{:.*}", (n - 1 - v.abs().log10().floor() as i32).max(0) as usize, v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn round_sig(v: f64, n: i32) -> f64 {
    let e = 10f64.powi(v.abs().log10().floor() as i32 - n + 1);
    (v / e).round() * e
}

/// "0.63 ± 0.08", or "0.63 (SE n/a)" when the SE is not finite.
fn pm(x: f64, se: f64) -> String {
    if se.is_finite() {
        format!("{x:.3} ± {se:.3}")
    } else {
        format!("{x:.3} (no SE: 2 points)")
    }
}

/// Tick positions for a log axis over [lo, hi]: 1-2-5 per decade over a
/// few decades, whole decades (or every k-th) over more.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let decades = (hi / lo).log10();
    let mantissas: &[f64] = if decades <= 1.2 {
        &[1.0, 2.0, 3.0, 5.0, 7.0]
    } else if decades <= 3.5 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let step = (decades / 8.0).ceil().max(1.0) as i32;
    let (e0, e1) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let mut t = Vec::new();
    for e in e0..=e1 {
        if (e - e0) % step != 0 {
            continue;
        }
        for m in mantissas {
            let v = m * 10f64.powi(e);
            if v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9) {
                t.push(v);
            }
        }
    }
    if t.len() < 2 {
        let round = |v: f64| {
            let e = 10f64.powf(v.log10().floor() - 1.0);
            (v / e).round() * e
        };
        t = vec![round(lo * 1.05), round(hi / 1.05)];
    }
    t
}

/// A log axis over [lo, hi] with explicit ticks.
fn log_axis(lo: f64, hi: f64, ticks: Vec<f64>) -> impl Ranged<ValueType = f64> + ValueFormatter<f64> {
    LogCoord::from((lo..hi).log_scale()).with_key_points(ticks)
}

/// Positive finite values' [min, max], padded by `pad` on a log scale; a default range when none.
fn log_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, 0.0f64);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.1, 1.0);
    }
    if hi / lo < 1.5 {
        return (lo / 1.5, hi * 1.5);
    }
    (lo / pad, hi * pad)
}

/// The fitted line y = exp(c − rate s) of the analysis (the same fit, on the
/// same points), drawn over the lags it used: (c, first s, last s). None
/// when the analysis stored no rate.
fn exp_fit_line(s: &[f64], y: &[f64], floor: f64, rate: f64) -> Option<(f64, f64, f64)> {
    if !rate.is_finite() {
        return None;
    }
    let fit = fit_decay_rate(s, y, floor, FLOOR_FACTOR)?;
    Some((fit.log_c, fit.s_range.0, fit.s_range.1))
}

fn dashed<DB: DrawingBackend, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    pts: Vec<(f64, f64)>,
    style: ShapeStyle,
    dash: u32,
) -> Result<(), DrawError>
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart.draw_series(DashedLineSeries::new(pts, dash, dash * 2 / 3 + 1, style))?;
    Ok(())
}

fn legend_line(c: RGBColor, width: u32) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(width))
}

fn legend_dashed(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    // Two short strokes read as a dashed line in the legend.
    move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], c.stroke_width(2))
}

// ---------------------------------------------------------------------------
// Weak error

struct WeSeries {
    colour: RGBColor,
    /// (η, |e|, SE·z, resolved) per η.
    points: Vec<(f64, f64, f64, bool)>,
    label: String,
    /// (order, intercept of ln|e| on ln η) of the weighted fit.
    fit: Option<(f64, f64, f64, f64)>,
}

struct WeFigure {
    stem: String,
    title: String,
    eta: Vec<f64>,
    z: f64,
    confidence: f64,
    series: Vec<WeSeries>,
}

fn weak_error_figures(we: &WeakError) -> Vec<WeFigure> {
    let (nr, nf) = (we.record_time.len(), we.functions.len());
    let mut figs = Vec::new();
    for s in &we.schemes {
        for (r, &t) in we.record_time.iter().enumerate() {
            let mut series = Vec::new();
            for (fi, fname) in we.functions.iter().enumerate() {
                let points: Vec<(f64, f64, f64, bool)> = we
                    .eta
                    .iter()
                    .enumerate()
                    .map(|(e, &eta)| {
                        let i = (e * nr + r) * nf + fi;
                        (eta, s.e[i].abs(), s.z * s.se[i], s.resolved[i] != 0.0)
                    })
                    .collect();
                let (order, hw, np) = (s.order[r * nf + fi], s.half_width[r * nf + fi], s.points[r * nf + fi]);
                let resolved = points.iter().filter(|p| p.3).count();
                let label = if order.is_finite() {
                    format!("{fname}: order {} ({np} resolved η)", crate::report::order_interval(order, hw))
                } else {
                    format!("{fname}: order not estimated ({resolved} of {} η resolved)", points.len())
                };
                // The weighted fit's intercept (weights e²/SE², as for the order).
                let fit = if order.is_finite() {
                    let used: Vec<_> = points.iter().filter(|p| p.3 && p.1 > 0.0 && p.2 > 0.0).collect();
                    let w: Vec<f64> = used.iter().map(|p| (p.1 / p.2).powi(2)).collect();
                    let sw: f64 = w.iter().sum();
                    if sw > 0.0 {
                        let c = used.iter().zip(&w).map(|(p, w)| w * (p.1.ln() - order * p.0.ln())).sum::<f64>() / sw;
                        let lo = used.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
                        let hi = used.iter().map(|p| p.0).fold(0.0, f64::max);
                        Some((order, c, lo, hi))
                    } else {
                        None
                    }
                } else {
                    None
                };
                series.push(WeSeries { colour: colour(fi), points, label, fit });
            }
            let stem = if nr > 1 { format!("weak_error_{}_t{}", s.name, fmt_num(t)) } else { format!("weak_error_{}", s.name) };
            let title = format!(
                "{} vs SDE ({} drift, {} noise, {}), t = {} · paper order {}",
                s.name.to_uppercase(),
                s.drift,
                s.noise,
                s.integrator,
                fmt_num(t),
                fmt_num(s.paper_order)
            );
            figs.push(WeFigure { stem, title, eta: we.eta.clone(), z: s.z, confidence: s.confidence, series });
        }
    }
    figs
}

impl Figure for WeFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        PLOT_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let etas: Vec<f64> = self.eta.iter().copied().filter(|e| e.is_finite() && *e > 0.0).collect();
        let (eta_min, eta_max) = etas.iter().fold((f64::INFINITY, 0.0f64), |(a, b), &e| (a.min(e), b.max(e)));
        let (eta_min, eta_max) = if eta_min <= eta_max { (eta_min, eta_max) } else { (0.1, 1.0) };
        let (x_lo, x_hi) = (eta_min / 1.25, eta_max * 1.25);
        // Reference slopes through a point below the data at the largest η.
        let at_max: Vec<f64> =
            self.series.iter().filter_map(|s| s.points.iter().find(|p| p.0 == eta_max).map(|p| p.1)).filter(|v| v.is_finite() && *v > 0.0).collect();
        let anchor = at_max.iter().copied().fold(f64::INFINITY, f64::min) / 2.0;
        let refs: Vec<(u32, Vec<(f64, f64)>)> = if anchor.is_finite() {
            [1u32, 2].iter().map(|&k| (k, vec![(eta_min, anchor * (eta_min / eta_max).powi(k as i32)), (eta_max, anchor)])).collect()
        } else {
            vec![]
        };
        // y range: the points, their upper bars, the reference lines, and lower bars
        // down to a tenth of the smallest point (lower ends beyond are clipped).
        let values: Vec<f64> = self.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).filter(|v| v.is_finite() && *v > 0.0).collect();
        let smallest = values.iter().copied().fold(f64::INFINITY, f64::min);
        let mut ys: Vec<f64> = values.clone();
        for s in &self.series {
            for p in &s.points {
                ys.push(p.1 + p.2);
                if p.1 - p.2 >= smallest / 10.0 {
                    ys.push(p.1 - p.2);
                }
            }
        }
        for (_, l) in &refs {
            ys.extend(l.iter().map(|p| p.1));
        }
        let (y_lo, y_hi) = log_range(ys.into_iter(), 1.6);
        // Headroom for the legend (upper left) above the data: about 20 px per entry
        // of the ~555 px plotting height.
        let entries = refs.len() + self.series.len() + 2;
        let f = ((entries as f64 * 20.0 + 20.0) / 555.0).min(0.6);
        let y_hi = y_hi * (y_hi / y_lo).powf(f / (1.0 - f));
        let clip = y_lo * 1.02;
        let x_ticks = if etas.len() <= 8 { etas.clone() } else { log_ticks(x_lo, x_hi) };
        let area = title_band(root, &self.title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d(log_axis(x_lo, x_hi, x_ticks), log_axis(y_lo, y_hi, log_ticks(y_lo, y_hi)))?;
        chart
            .configure_mesh()
            .x_desc("learning rate η")
            .y_desc("|E f(SGA) − E f(SDE)|")
            .x_label_formatter(&|v| fmt_num(*v))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(font(15))
            .axis_desc_style(font(18))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for (k, line) in &refs {
            let style = GREY.stroke_width(2);
            let dash = if *k == 1 { 12 } else { 5 };
            dashed(&mut chart, line.clone(), style, dash)?;
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(format!("slope {k}"))
                .legend(move |(x, y)| PathElement::new(if dash == 12 { vec![(x, y), (x + 12, y)] } else { vec![(x, y), (x + 5, y)] }, GREY.stroke_width(2)));
            let (ex, ey) = line[0];
            chart.draw_series(std::iter::once(Text::new(format!("slope {k}"), (ex * 1.03, ey), font(14).color(&GREY))))?;
        }
        let n = self.series.len();
        for (si, s) in self.series.iter().enumerate() {
            let c = s.colour;
            // Series side by side around each η (a few per cent apart on the log axis).
            let dodge = 1.035f64.powf(si as f64 - (n as f64 - 1.0) / 2.0);
            // Interval bars: ± z SE, the lower end clipped at the axis (no cap there).
            let mut bars = Vec::new();
            for &(eta, e, hw, _) in &s.points {
                let eta = eta * dodge;
                if !(e.is_finite() && hw.is_finite()) {
                    continue;
                }
                let top = (e + hw).max(clip);
                let bottom = e - hw;
                let low = if bottom > clip { bottom } else { clip };
                bars.push(PathElement::new(vec![(eta, low), (eta, top)], c.stroke_width(2)));
                let cap = |y: f64| PathElement::new(vec![(eta / 1.015, y), (eta * 1.015, y)], c.stroke_width(2));
                bars.push(cap(top));
                if bottom > clip {
                    bars.push(cap(bottom));
                }
            }
            chart.draw_series(bars)?;
            if let Some((order, c0, lo, hi)) = s.fit {
                let line: Vec<(f64, f64)> = [lo, hi].iter().map(|&x| (x, (c0 + order * x.ln()).exp())).collect();
                chart.draw_series(LineSeries::new(line, c.mix(0.7).stroke_width(1)))?;
            }
            let markers = s.points.iter().filter(|p| p.1.is_finite()).map(|&(eta, e, _, resolved)| {
                let y = e.max(clip);
                let style = if resolved { c.filled() } else { c.stroke_width(2) };
                EmptyElement::at((eta * dodge, y)) + Circle::new((0, 0), 6, WHITE.filled()) + Circle::new((0, 0), 6, style)
            });
            chart.draw_series(markers)?.label(&s.label).legend(move |(x, y)| {
                EmptyElement::at((x + 10, y)) + PathElement::new(vec![(-10, 0), (10, 0)], c.stroke_width(1)) + Circle::new((0, 0), 5, c.filled())
            });
        }
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label("hollow marker: not resolved (|e| < 4 SE or SDE bias > 0.1|e|)")
            .legend(|(x, y)| EmptyElement::at((x + 10, y)) + Circle::new((0, 0), 5, BLACK.stroke_width(2)));
        chart
            .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
            .label(format!("bars: ± {:.2} SE ({}% interval); at the axis bottom: clipped", self.z, crate::report::percent(self.confidence)))
            .legend(|(x, y)| PathElement::new(vec![(x + 10, y - 7), (x + 10, y + 7)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(font(14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Long run

fn coord_name(lr: &LongRun, c: usize) -> String {
    if c < lr.dim_theta {
        format!("θ{}", c + 1)
    } else {
        format!("ω{}", c + 1 - lr.dim_theta)
    }
}

/// What a kind holds, for titles and legends.
fn describe(lr: &LongRun, k: &Kind) -> String {
    let scheme = k.scheme.to_uppercase();
    match k.source.as_str() {
        "sga" => format!("{}: SGA {scheme} chains, η = {}", k.name, fmt_num(k.step)),
        "sga-scheduled" => format!("{}: SGA {scheme} chains under the Remark 4 scheduler, η₀ = {}", k.name, fmt_num(lr.eta)),
        "sde" => format!("{}: {scheme}-SDE paths, {} drift, step {}", k.name, k.drift, fmt_num(k.step)),
        other => format!("{}: {other} {scheme}", k.name),
    }
}

/// Short legend names of a kind's law.
fn law_label(k: &Kind) -> String {
    match k.source.as_str() {
        "sga" => format!("μ_η: SGA {}", k.scheme.to_uppercase()),
        "sga-scheduled" => "SGA, scheduled η".into(),
        "sde" if k.name.ends_with("_half") => format!("μ*: SDE (step {})", fmt_num(k.step)),
        "sde" => format!("μ*: {}-SDE", k.scheme.to_uppercase()),
        _ => k.name.clone(),
    }
}

/// Panels for at most MAX_PANELS coordinates; a note when some are left out.
fn panels(lr: &LongRun) -> (usize, String) {
    let n = lr.dim.min(MAX_PANELS);
    let note = if lr.dim > n { format!(" (first {n} of {} coordinates)", lr.dim) } else { String::new() };
    (n, note)
}

/// One kind's histogram in a marginals panel.
struct Hist {
    label: String,
    colour: RGBColor,
    filled: bool,
    edges: Vec<f64>,
    density: Vec<f64>,
}

struct MarginalFigure {
    stem: String,
    title: String,
    /// Per panel: caption and the kinds' histograms.
    panels: Vec<(String, Vec<Hist>)>,
}

fn marginal_figures(lr: &LongRun) -> Vec<MarginalFigure> {
    let mut schemes: Vec<&str> = Vec::new();
    for k in &lr.kinds {
        if !schemes.contains(&k.scheme.as_str()) {
            schemes.push(&k.scheme);
        }
    }
    let (n, note) = panels(lr);
    let mut figs = Vec::new();
    for scheme in schemes {
        // SDE first (filled, underneath), then SGA, then the rest.
        let mut kinds: Vec<&Kind> = lr.kinds.iter().filter(|k| k.scheme == scheme).collect();
        let rank = |k: &Kind| match (k.source.as_str(), k.name.ends_with("_half")) {
            ("sde", false) => 0,
            ("sga", _) => 1,
            ("sde", true) => 2,
            _ => 3,
        };
        kinds.sort_by_key(|k| rank(k));
        let style = |k: &Kind| match rank(k) {
            0 => (colour(0), true),
            1 => (colour(1), false),
            2 => (colour(4), false),
            _ => (colour(2), false),
        };
        let w1 = lr.w1.iter().find(|(sga, sde, _, _)| kinds.iter().any(|k| &k.name == sga) && kinds.iter().any(|k| &k.name == sde));
        let mut ps = Vec::new();
        for c in 0..n {
            let caption = match w1 {
                Some((_, _, v, noise)) if c < v.len() => match noise.get(c) {
                    Some(n) => format!("{}   W1(μ_η, μ*) = {} (noise {})", coord_name(lr, c), sig(v[c], 3), sig(*n, 2)),
                    None => format!("{}   W1(μ_η, μ*) = {}", coord_name(lr, c), sig(v[c], 3)),
                },
                _ => coord_name(lr, c),
            };
            let hs = kinds
                .iter()
                .map(|k| {
                    let (col, filled) = style(k);
                    Hist { label: law_label(k), colour: col, filled, edges: k.hist_edges[c].clone(), density: k.hist_density[c].clone() }
                })
                .collect();
            ps.push((caption, hs));
        }
        let sga = kinds.iter().find(|k| k.source == "sga");
        let sde = kinds.iter().find(|k| k.source == "sde" && !k.name.ends_with("_half"));
        let title = format!(
            "Stationary marginals, {}: μ_η (SGA, η = {}) vs μ* ({}-SDE, {} drift){note}",
            scheme.to_uppercase(),
            sga.map_or("—".into(), |k| fmt_num(k.step)),
            scheme.to_uppercase(),
            sde.map_or("—", |k| k.drift.as_str())
        );
        figs.push(MarginalFigure { stem: format!("marginals_{scheme}"), title, panels: ps });
    }
    figs
}

impl Figure for MarginalFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        grid_size(self.panels.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let rest = title_band(root, &self.title)?;
        let areas = rest.split_evenly(grid_shape(self.panels.len()));
        for ((caption, hists), area) in self.panels.iter().zip(&areas) {
            let lo = hists.iter().flat_map(|h| h.edges.first().copied()).filter(|v| v.is_finite()).fold(f64::INFINITY, f64::min);
            let hi = hists.iter().flat_map(|h| h.edges.last().copied()).filter(|v| v.is_finite()).fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if lo < hi { (lo, hi) } else { (-1.0, 1.0) };
            let top = hists.iter().flat_map(|h| h.density.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
            let top = if top > 0.0 { top * 1.3 } else { 1.0 };
            let mut chart = panel_chart(area, caption, 16, 55).build_cartesian_2d(lo..hi, 0.0..top)?;
            chart
                .configure_mesh()
                .x_desc("value")
                .y_desc("density")
                .x_labels(5)
                .y_labels(5)
                .x_label_formatter(&|v| fmt_lin(*v, hi - lo))
                .y_label_formatter(&|v| fmt_lin(*v, top))
                .label_style(font(12))
                .axis_desc_style(font(13))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .draw()?;
            for Hist { label, colour: c, filled, edges, density: dens } in hists {
                let mut step = Vec::with_capacity(2 * dens.len() + 2);
                step.push((edges[0], 0.0));
                for (i, d) in dens.iter().enumerate() {
                    let d = if d.is_finite() { *d } else { 0.0 };
                    step.push((edges[i], d));
                    step.push((edges[i + 1], d));
                }
                step.push((edges[edges.len() - 1], 0.0));
                let c = *c;
                if *filled {
                    chart.draw_series(std::iter::once(Polygon::new(step.clone(), c.mix(0.25))))?;
                }
                chart.draw_series(LineSeries::new(step, c.stroke_width(2)))?.label(label.as_str()).legend(legend_line(c, 2));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(11))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        Ok(())
    }
}

/// β(s) of one projection: estimate and floor per lag, fitted rate and SE (NaN when none).
struct BetaSeries {
    name: String,
    beta: Vec<f64>,
    floor: Vec<f64>,
    rate: f64,
    se: f64,
}

struct BetaFigure {
    stem: String,
    title: String,
    lag: Vec<f64>,
    series: Vec<BetaSeries>,
}

fn beta_figures(lr: &LongRun) -> Vec<BetaFigure> {
    let mut figs = Vec::new();
    for k in lr.kinds.iter().filter(|k| !k.beta.is_empty()) {
        let series = k
            .beta
            .iter()
            .enumerate()
            .map(|(j, b)| {
                let name = lr.projections.get(j).cloned().unwrap_or_else(|| format!("projection {}", j + 1));
                BetaSeries { name, beta: b.clone(), floor: k.beta_floor[j].clone(), rate: k.beta_rate[j], se: k.beta_rate_se[j] }
            })
            .collect();
        figs.push(BetaFigure {
            stem: format!("beta_{}", k.name),
            title: format!("β(s) of projections — {}", describe(lr, k)),
            lag: lr.lag_time.clone(),
            series,
        });
    }
    figs
}

impl Figure for BetaFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        PLOT_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let (x_lo, x_hi) = {
            let lo = self.lag.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = self.lag.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo < hi {
                (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
            } else {
                (0.0, 1.0)
            }
        };
        // The rate fits use lags above 3 × floor (each projection's largest floor).
        let threshold = FLOOR_FACTOR * self.series.iter().flat_map(|s| s.floor.iter().copied()).filter(|v| v.is_finite()).fold(0.0, f64::max);
        let (y_lo, y_hi) = log_range(self.series.iter().flat_map(|s| s.beta.iter().chain(&s.floor).copied()).chain([threshold]), 1.4);
        let area = title_band(root, &self.title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d(x_lo..x_hi, log_axis(y_lo, y_hi, log_ticks(y_lo, y_hi)))?;
        chart
            .configure_mesh()
            .x_desc("lag s (time)")
            .y_desc("β(s) (2-D histogram estimate)")
            .x_label_formatter(&|v| fmt_lin(*v, x_hi - x_lo))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(font(15))
            .axis_desc_style(font(18))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        if threshold > 0.0 {
            dashed(&mut chart, vec![(x_lo, threshold), (x_hi, threshold)], GREY.stroke_width(1), 3)?;
            chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label("3 × floor: rates are fitted on lags above").legend(legend_dashed(GREY));
        }
        for (j, BetaSeries { name, beta, floor, rate, se }) in self.series.iter().enumerate() {
            let c = colour(j);
            let pts: Vec<(f64, f64)> = self.lag.iter().zip(beta).filter(|(_, b)| b.is_finite() && **b > 0.0).map(|(s, b)| (*s, *b)).collect();
            let fl: Vec<(f64, f64)> = self.lag.iter().zip(floor).filter(|(_, b)| b.is_finite() && **b > 0.0).map(|(s, b)| (*s, *b)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            let label = if rate.is_finite() { format!("{name}: β(s)") } else { format!("{name}: β(s) (no rate: < 2 lags above 3 × floor)") };
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled())))?.label(label).legend(move |(x, y)| {
                EmptyElement::at((x + 10, y)) + PathElement::new(vec![(-10, 0), (10, 0)], c.stroke_width(2)) + Circle::new((0, 0), 4, c.filled())
            });
            dashed(&mut chart, fl.clone(), c.mix(0.8).stroke_width(1), 6)?;
            chart.draw_series(fl.iter().map(|&p| Cross::new(p, 4, c.stroke_width(1))))?.label(format!("{name}: floor (pairs from independent paths)")).legend(
                move |(x, y)| {
                    EmptyElement::at((x + 10, y)) + PathElement::new(vec![(-10, 0), (-4, 0)], c.stroke_width(1)) + Cross::new((4, 0), 4, c.stroke_width(1))
                },
            );
            let fmax = floor.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
            if let Some((c0, s0, s1)) = exp_fit_line(&self.lag, beta, fmax, *rate) {
                let line: Vec<(f64, f64)> = (0..=40).map(|i| s0 + (s1 - s0) * i as f64 / 40.0).map(|s| (s, (c0 - rate * s).exp())).collect();
                dashed(&mut chart, line, c.stroke_width(4), 14)?;
                chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label(format!("{name}: fit C·e^(−r s), r = {}", pm(*rate, *se))).legend(
                    move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (8, 0)], c.stroke_width(4))
                            + PathElement::new(vec![(13, 0), (20, 0)], c.stroke_width(4))
                    },
                );
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
        Ok(())
    }
}

struct ConvergenceFigure {
    stem: String,
    title: String,
    x_desc: String,
    time: Vec<f64>,
    burn_in: f64,
    /// (coordinate, W1 curve, floor, rate, rate SE).
    panels: Vec<(String, Vec<f64>, f64, f64, f64)>,
    no_rate: String,
    /// Show only the transient: up to 3 × burn-in, or past the last fitted point.
    truncate: bool,
}

fn convergence_figures(lr: &LongRun) -> Vec<ConvergenceFigure> {
    let (n, note) = panels(lr);
    let mut figs = Vec::new();
    for k in &lr.kinds {
        let scheduled = k.source == "sga-scheduled";
        let ps = (0..n).map(|c| (coord_name(lr, c), k.conv[c].clone(), k.conv_floor[c], k.conv_rate[c], k.conv_rate_se[c])).collect();
        figs.push(ConvergenceFigure {
            stem: format!("convergence_{}", k.name),
            title: format!("W1(law at t, late-time law) per coordinate — {}{note}", describe(lr, k)),
            x_desc: if scheduled { "t at η₀ (record steps · η₀; η shrinks)".into() } else { "time t".into() },
            time: lr.record_time.clone(),
            burn_in: lr.burn_in,
            panels: ps,
            no_rate: if scheduled { "no rate (η varies)".into() } else { "no rate (< 2 points above 3 × floor)".into() },
            truncate: !scheduled,
        });
    }
    figs
}

impl Figure for ConvergenceFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        grid_size(self.panels.len())
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let rest = title_band(root, &self.title)?;
        let areas = rest.split_evenly(grid_shape(self.panels.len()));
        let t_hi = self.time.iter().copied().filter(|t| t.is_finite()).fold(0.0, f64::max);
        let t_lo = self.time.iter().copied().filter(|t| t.is_finite()).fold(f64::INFINITY, f64::min);
        let (t_lo, t_end) = if t_lo < t_hi { (t_lo, t_hi) } else { (0.0, 1.0) };
        // The analysis fits the convergence rate on the records before the burn-in.
        let lead =
            self.time.iter().position(|&t| t >= self.burn_in - 1e-9 * self.burn_in.abs().max(1.0)).unwrap_or(self.time.len()).max(2).min(self.time.len());
        let fits: Vec<Option<(f64, f64, f64)>> =
            self.panels.iter().map(|(_, w1, floor, rate, _)| exp_fit_line(&self.time[..lead], &w1[..lead], *floor, *rate)).collect();
        let last_fit = fits.iter().flatten().map(|f| f.2).fold(0.0, f64::max);
        let t_hi = if self.truncate { t_end.min((3.0 * self.burn_in).max(1.2 * last_fit)) } else { t_end };
        let t_hi = if t_hi > t_lo { t_hi } else { t_end };
        let x_desc = if t_hi < t_end { format!("{} (up to {} of {})", self.x_desc, sig(t_hi, 3), sig(t_end, 3)) } else { self.x_desc.clone() };
        for (((name, w1, floor, rate, se), area), fit) in self.panels.iter().zip(&areas).zip(fits) {
            let shown: Vec<(f64, f64)> =
                self.time.iter().zip(w1).filter(|(t, v)| t.is_finite() && **t <= t_hi && v.is_finite() && **v > 0.0).map(|(t, v)| (*t, *v)).collect();
            let (y_lo, y_hi) = log_range(shown.iter().map(|p| p.1).chain([*floor]), 1.5);
            let caption = if rate.is_finite() { format!("{name}: rate {}", pm(*rate, *se)) } else { format!("{name}: {}", self.no_rate) };
            let mut chart = panel_chart(area, &caption, 15, 60).build_cartesian_2d(t_lo..t_hi, log_axis(y_lo, y_hi, log_ticks(y_lo, y_hi)))?;
            chart
                .configure_mesh()
                .x_desc(x_desc.as_str())
                .y_desc("W1")
                .x_labels(6)
                .x_label_formatter(&|v| fmt_lin(*v, t_hi - t_lo))
                .y_label_formatter(&|v| fmt_num(*v))
                .label_style(font(12))
                .axis_desc_style(font(13))
                .light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .draw()?;
            chart.draw_series(LineSeries::new(shown, colour(0).stroke_width(1)))?.label("W1(t)").legend(legend_line(colour(0), 2));
            if floor.is_finite() && *floor > 0.0 {
                dashed(&mut chart, vec![(t_lo, *floor), (t_hi, *floor)], GREY.stroke_width(2), 8)?;
                chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label(format!("floor {}", sig(*floor, 3))).legend(legend_dashed(GREY));
            }
            if self.burn_in > t_lo && self.burn_in < t_hi {
                dashed(&mut chart, vec![(self.burn_in, y_lo), (self.burn_in, y_hi)], colour(2).stroke_width(1), 3)?;
                chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label("burn-in").legend(legend_dashed(colour(2)));
            }
            if let Some((c0, s0, s1)) = fit {
                let line: Vec<(f64, f64)> = (0..=40).map(|i| s0 + (s1 - s0) * i as f64 / 40.0).map(|s| (s, (c0 - rate * s).exp())).collect();
                dashed(&mut chart, line, colour(3).stroke_width(2), 10)?;
                chart
                    .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                    .label(format!("fit, rate {}", pm(*rate, *se)))
                    .legend(legend_line(colour(3), 2));
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .label_font(font(11))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .draw()?;
        }
        Ok(())
    }
}

struct ScheduleFigure {
    stem: String,
    title: String,
    time: Vec<f64>,
    eta_mean: Vec<f64>,
    eta0: f64,
}

fn schedule_figures(lr: &LongRun) -> Vec<ScheduleFigure> {
    lr.kinds
        .iter()
        .filter(|k| !k.eta_mean.is_empty())
        .map(|k| ScheduleFigure {
            stem: format!("eta_schedule_{}", k.name),
            title: format!("Mean learning rate over chains — {}", describe(lr, k)),
            time: lr.record_time.clone(),
            eta_mean: k.eta_mean.clone(),
            eta0: lr.eta,
        })
        .collect()
}

impl Figure for ScheduleFigure {
    fn stem(&self) -> String {
        self.stem.clone()
    }

    fn size(&self) -> (u32, u32) {
        PLOT_SIZE
    }

    fn draw<DB: DrawingBackend>(&self, root: &Area<DB>) -> Result<(), DrawError> {
        let pts: Vec<(f64, f64)> =
            self.time.iter().zip(&self.eta_mean).filter(|(t, v)| t.is_finite() && v.is_finite() && **v > 0.0).map(|(t, v)| (*t, *v)).collect();
        let t_hi = pts.iter().map(|p| p.0).fold(0.0, f64::max);
        let t_lo = pts.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let (t_lo, t_hi) = if t_lo < t_hi { (t_lo, t_hi) } else { (0.0, 1.0) };
        let (y_lo, y_hi) = log_range(pts.iter().map(|p| p.1).chain([self.eta0]), 1.3);
        let area = title_band(root, &self.title)?;
        let mut chart = ChartBuilder::on(&area)
            .margin(15)
            .x_label_area_size(55)
            .y_label_area_size(90)
            .build_cartesian_2d(t_lo..t_hi, log_axis(y_lo, y_hi, log_ticks(y_lo, y_hi)))?;
        chart
            .configure_mesh()
            .x_desc("t at η₀ (record steps · η₀)")
            .y_desc("mean learning rate η")
            .x_label_formatter(&|v| fmt_lin(*v, t_hi - t_lo))
            .y_label_formatter(&|v| fmt_num(*v))
            .label_style(font(15))
            .axis_desc_style(font(18))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        chart.draw_series(LineSeries::new(pts, colour(2).stroke_width(2)))?.label("mean η over chains").legend(legend_line(colour(2), 2));
        dashed(&mut chart, vec![(t_lo, self.eta0), (t_hi, self.eta0)], GREY.stroke_width(1), 8)?;
        chart.draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?.label(format!("initial η₀ = {}", fmt_num(self.eta0))).legend(legend_dashed(GREY));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .label_font(font(14))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.5))
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ticks() {
        assert_eq!(fmt_num(0.025), "0.025");
        assert_eq!(fmt_num(0.2), "0.2");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(1e-4), "1e-4");
        assert_eq!(fmt_num(2.5e-5), "2.5e-5");
        assert_eq!(log_ticks(0.01, 1.0), vec![0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]);
        assert!(log_ticks(0.3, 0.4).len() >= 2);
        assert_eq!(grid_size(4), (2 * PANEL_SIZE.0, 2 * PANEL_SIZE.1 + GRID_TITLE_HEIGHT));
        assert_eq!(grid_shape(12), (3, 4));
    }

    #[test]
    fn fit_line_reproduces_the_intercept() {
        let s = [0.0, 1.0, 2.0, 3.0, 10.0];
        let y: Vec<f64> = s.iter().map(|t: &f64| 2.0 * (-0.5 * t).exp()).collect();
        let (c, lo, hi) = exp_fit_line(&s, &y, 0.05, 0.5).unwrap();
        assert!((c - 2f64.ln()).abs() < 1e-12);
        assert_eq!((lo, hi), (0.0, 3.0));
    }
}
