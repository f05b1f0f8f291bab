//! Reading a long-run file and computing the analysis.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use hdf5::types::VarLenUnicode;

use super::kind::KindContext;
use super::{Analysis, KindAnalysis, MarginalDistance};

/// A file that cannot be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// The stop flag was raised (a signal); nothing was written.
    #[error("the analysis of {path} was stopped")]
    Stopped { path: String },
}

pub(super) struct Reader<'a> {
    path: &'a Path,
    stop: &'a AtomicBool,
}

impl Reader<'_> {
    pub(super) fn err(&self, message: impl std::fmt::Display) -> AnalysisError {
        AnalysisError::File { path: self.path.display().to_string(), message: message.to_string() }
    }

    /// Err(Stopped) once the stop flag is raised: checked for every path read
    /// and every lag, so a signal is answered within a fraction of a second.
    pub(super) fn check_stop(&self) -> Result<(), AnalysisError> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(AnalysisError::Stopped { path: self.path.display().to_string() });
        }
        Ok(())
    }
}

/// Mean and standard error of per-path values.
pub(super) fn mean_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0).max(1.0);
    let se = (v / n).sqrt();
    // Per-path averages of a constant (e.g. β⁻¹Tr Σ for `lq`) differ only by
    // rounding; no sampling error is 1e-12 of the mean at any feasible path count.
    (m, if se <= 1e-12 * m.abs() { 0.0 } else { se })
}

/// Analyses the long-run study file at `path`.
pub fn analyze(path: &Path) -> Result<Analysis, AnalysisError> {
    analyze_until(path, &AtomicBool::new(false))
}

/// Like [`analyze`], but gives up with [`AnalysisError::Stopped`] soon after
/// `stop` is raised (a time-limit warning must not wait for a long analysis).
pub fn analyze_until(path: &Path, stop: &AtomicBool) -> Result<Analysis, AnalysisError> {
    let rd = Reader { path, stop };
    if !path.exists() {
        return Err(rd.err("does not exist"));
    }
    let f = hdf5::File::open(path).map_err(|e| rd.err(format!("cannot open as HDF5: {}", crate::data::one_line(&e.to_string()))))?;
    let study: String = f.attr("study").and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default();
    if study != "long-run" {
        return Err(rd.err(if study.is_empty() {
            "not a gansde results file".to_string()
        } else {
            format!("a {study} results file; analyze reads long-run files")
        }));
    }
    let samples_dir = path.parent().unwrap_or(Path::new("")).join("samples");
    if !samples_dir.is_dir() {
        return Err(rd.err(format!(
            "its samples folder {} is not there (the file reads its samples from the block files in samples/ beside it: move the study folder as a whole)",
            samples_dir.display()
        )));
    }
    let attr_f = |n: &str| f.attr(n).and_then(|a| a.read_scalar::<f64>()).map_err(|e| rd.err(format!("attribute {n}: {e}")));
    let attr_u = |n: &str| f.attr(n).and_then(|a| a.read_scalar::<u64>()).map_err(|e| rd.err(format!("attribute {n}: {e}")));
    let mut a = Analysis {
        eta: attr_f("eta")?,
        batch: attr_u("batch")? as usize,
        dim_theta: attr_u("dim_theta")? as usize,
        first_stationary: attr_u("first_stationary_record")? as usize,
        bins: attr_u("bins")? as usize,
        trace_method: f.attr("trace_method").and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    a.record_time = f.dataset("record_time").and_then(|d| d.read_raw::<f64>()).map_err(|e| rd.err(e))?;
    a.lags = f.dataset("lag_records").and_then(|d| d.read_raw::<u64>()).map_err(|e| rd.err(e))?.into_iter().map(|l| l as usize).collect();
    let pw = f.dataset("projection_weights").map_err(|e| rd.err(e))?;
    let d = pw.shape()[1];
    a.dim = d;
    let weights = pw.read_raw::<f64>().map_err(|e| rd.err(e))?;
    let pnames: Vec<String> =
        f.dataset("projection_names").and_then(|d| d.read_raw::<VarLenUnicode>()).map_err(|e| rd.err(e))?.iter().map(|s| s.to_string()).collect();
    let samples = f.group("samples").map_err(|e| rd.err(e))?;
    let names = samples.member_names().map_err(|e| rd.err(e))?;
    let mut kinds = Vec::with_capacity(names.len());
    for name in &names {
        let ds = samples.dataset(name).map_err(|e| rd.err(e))?;
        let sattr = |n: &str| ds.attr(n).and_then(|a| a.read_scalar::<VarLenUnicode>()).map(|s| s.to_string()).unwrap_or_default();
        kinds.push(KindAnalysis {
            name: name.clone(),
            source: sattr("source"),
            scheme: sattr("scheme"),
            drift: sattr("drift"),
            step: ds.attr("step").and_then(|a| a.read_scalar::<f64>()).unwrap_or(f64::NAN),
            paths: ds.shape()[0],
            ..Default::default()
        });
    }
    // Each SGA kind's marginals are compared (W1) with the SDE kind of its scheme at the job's step.
    let partner: Vec<Option<usize>> = kinds
        .iter()
        .map(|k| if k.source != "sga" { None } else { kinds.iter().position(|s| s.source == "sde" && s.scheme == k.scheme && !s.name.ends_with("_half")) })
        .collect();
    let block = attr_u("block_size")? as usize;
    let ranges = shared_ranges(&rd, &f, &kinds, block, a.first_stationary, d)?;
    // Each partner just before the kinds compared with it: at most one kind's
    // stationary samples are kept beside the kind being analysed.
    let mut order: Vec<usize> = Vec::with_capacity(kinds.len());
    for j in 0..kinds.len() {
        if partner.contains(&Some(j)) {
            order.push(j);
            order.extend((0..kinds.len()).filter(|&i| partner[i] == Some(j)));
        }
    }
    let rest: Vec<usize> = (0..kinds.len()).filter(|i| !order.contains(i)).collect();
    order.extend(rest);
    let ctx = KindContext { rd: &rd, file: &f, a: &a, block, weights: &weights, pnames: &pnames, ranges: &ranges };
    let mut kept: Option<(usize, Vec<Vec<f64>>)> = None;
    let mut w1: Vec<Option<(Vec<f64>, Vec<f64>)>> = vec![None; kinds.len()];
    for &ki in &order {
        let against = partner[ki].map(|j| match &kept {
            Some((kj, late)) if *kj == j => late.as_slice(),
            _ => unreachable!("a partner is analysed just before the kinds compared with it"),
        });
        let keep = partner.contains(&Some(ki));
        let (late, w) = ctx.analyze_kind(&mut kinds[ki], keep, against)?;
        w1[ki] = w;
        if let Some(late) = late {
            kept = Some((ki, late));
        }
    }
    for (i, w) in w1.into_iter().enumerate() {
        if let (Some((w1, noise)), Some(j)) = (w, partner[i]) {
            a.w1_sga_sde.push(MarginalDistance { sga: kinds[i].name.clone(), sde: kinds[j].name.clone(), w1, noise });
        }
    }
    a.kinds = kinds;
    Ok(a)
}

/// The histogram range (lo, hi) of each coordinate, shared by all kinds: the
/// extent of every kind's stationary records (a pass that keeps nothing but
/// the extremes). A path with missing records is reported here, before any
/// long computation.
fn shared_ranges(rd: &Reader, file: &hdf5::File, kinds: &[KindAnalysis], block: usize, first: usize, d: usize) -> Result<Vec<(f64, f64)>, AnalysisError> {
    let mut lo = vec![f64::INFINITY; d];
    let mut hi = vec![f64::NEG_INFINITY; d];
    for k in kinds {
        let mut reader = PathReader::new(file, format!("samples/{}", k.name), block);
        for pi in 0..k.paths {
            let u = reader.read_samples(rd, pi)?;
            for row in u.chunks_exact(d).skip(first) {
                for c in 0..d {
                    lo[c] = lo[c].min(row[c]);
                    hi[c] = hi[c].max(row[c]);
                }
            }
        }
    }
    Ok(lo.into_iter().zip(hi).map(|(l, h)| if h > l { (l, h) } else { (l - 0.5, l + 0.5) }).collect())
}

/// Reads a stored dataset ([path, record, column]) path by path. A virtual
/// dataset keeps every block file it has read from open, each with its own
/// HDF5 caches (about 0.8 MiB), until it is closed; reopening it at each
/// block boundary keeps one block file open, whatever the number of blocks.
pub(super) struct PathReader<'a> {
    file: &'a hdf5::File,
    /// The dataset's path in the file, e.g. `samples/sga_alt`.
    path: String,
    block: usize,
    open: Option<hdf5::Dataset>,
}

impl<'a> PathReader<'a> {
    pub(super) fn new(file: &'a hdf5::File, path: String, block: usize) -> Self {
        PathReader { file, path, block: block.max(1), open: None }
    }

    /// Every record of path `pi`, row-major [record, column] (or [record] for a 2-D dataset).
    pub(super) fn read(&mut self, rd: &Reader, pi: usize) -> Result<Vec<f64>, AnalysisError> {
        rd.check_stop()?;
        if pi % self.block == 0 {
            self.open = None;
        }
        if self.open.is_none() {
            self.open = Some(self.file.dataset(&self.path).map_err(|e| rd.err(format!("{}: {e}", self.path)))?);
        }
        let ds = self.open.as_ref().expect("opened above");
        // [path, record, column] datasets, and [path, record] ones (η of scheduled chains).
        let rows: Result<Vec<f64>, hdf5::Error> = if ds.ndim() == 2 {
            ds.read_slice_1d::<f64, _>((pi, ..)).map(|r| r.to_vec())
        } else {
            ds.read_slice_2d::<f64, _>((pi, .., ..)).map(|r| r.iter().copied().collect())
        };
        rows.map_err(|e| rd.err(format!("{} path {pi}: {}; {}", self.path, crate::data::one_line(&e.to_string()), self.recovery(rd, pi, "is damaged"))))
    }

    /// What to do about the block file that holds path `pi`.
    fn recovery(&self, rd: &Reader, pi: usize, what: &str) -> String {
        let kind = self.path.rsplit('/').next().unwrap_or_default();
        let folder = rd.path.parent().unwrap_or(Path::new(""));
        let block = folder.join(crate::io::SampleStore::relative(kind, (pi / self.block) as u64));
        format!(
            "its block file {} {what}: remove it and {}, then run the study again, with the same job and flags plus --resume, to recompute that block (the other blocks are kept)",
            block.display(),
            rd.path.display()
        )
    }

    /// Like [`read`](Self::read), for samples: a missing record (NaN) is an error.
    pub(super) fn read_samples(&mut self, rd: &Reader, pi: usize) -> Result<Vec<f64>, AnalysisError> {
        let u = self.read(rd, pi)?;
        if u.iter().any(|x| x.is_nan()) {
            return Err(rd.err(format!("{} path {pi} has missing records (NaN); {}", self.path, self.recovery(rd, pi, "is missing or incomplete"))));
        }
        Ok(u)
    }
}
