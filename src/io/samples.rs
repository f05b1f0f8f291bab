//! The long-run sample store (DESIGN §4): every block of paths is written, as
//! soon as it is complete, by the rank that simulated it to its own file
//! `samples/<kind>/block-NNNNNN.h5` (chunked, deflate-compressed; written
//! under a temporary name and renamed, so a file is complete or absent). The
//! study file `long_run.h5` stitches the blocks into one virtual dataset per
//! kind with relative paths, which h5py opens as one [path, record,
//! coordinate] array. The block files double as the resume state.

use std::path::{Path, PathBuf};

use crate::job::Job;
use crate::study::long_run::{all_kind_names, BlockWriter, LongRunSummary, SampleKind, SampleSink, Source, CHUNK_RECORDS};
use crate::study::observables::OBSERVABLES;

use super::results::{attr_f64, attr_str, attr_u64, dataset, utc_now};
use super::RunInfo;

/// Block files under `<out>/samples`.
pub struct SampleStore {
    dir: PathBuf,
    fingerprint: u64,
    records: usize,
    dim: usize,
}

impl SampleStore {
    /// The store for a study with `fingerprint`, `records` records of `dim` coordinates.
    pub fn new(dir: PathBuf, fingerprint: u64, records: usize, dim: usize) -> Self {
        SampleStore { dir, fingerprint, records, dim }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of block `block` of `kind`, relative to the store's parent (the study folder).
    pub fn relative(kind: &str, block: u64) -> String {
        format!("samples/{kind}/block-{block:06}.h5")
    }

    fn file(&self, kind: &str, block: u64) -> PathBuf {
        self.dir.join(kind).join(format!("block-{block:06}.h5"))
    }

    /// The kind folders gansde owns that exist as real folders (a link is
    /// never followed: it may lead into another study's store).
    fn kind_dirs(&self) -> Vec<PathBuf> {
        let real_dir = |p: &PathBuf| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
        all_kind_names().into_iter().map(|k| self.dir.join(k)).filter(real_dir).collect()
    }

    /// The block files (with `partial`, also half-written ones) in `kind_dir`:
    /// files or links named as the store names them.
    fn block_files(kind_dir: &Path, partial: bool) -> std::io::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for e in std::fs::read_dir(kind_dir)? {
            let e = e?;
            let t = e.file_type()?;
            if (t.is_file() || t.is_symlink()) && is_block_file(&e.file_name().to_string_lossy(), partial) {
                files.push(e.path());
            }
        }
        Ok(files)
    }

    /// Whether any block is stored.
    pub fn exists(&self) -> bool {
        // An empty folder (e.g. left by a run that diverged at once) holds no progress.
        self.kind_dirs().iter().any(|k| Self::block_files(k, false).is_ok_and(|f| !f.is_empty()))
    }

    /// Removes every stored block (and any half-written one) from gansde's
    /// kind folders, then those folders and the store if that left them
    /// empty. Anything else, and anything behind a link, stays.
    pub fn clear(&self) -> std::io::Result<()> {
        for kind in self.kind_dirs() {
            for f in Self::block_files(&kind, true)? {
                std::fs::remove_file(f)?;
            }
            // Fails, harmlessly, where a user's file is left.
            let _ = std::fs::remove_dir(&kind);
        }
        let _ = std::fs::remove_dir(&self.dir);
        Ok(())
    }

    fn create(&self, kind: &SampleKind, block: u64, n: usize, path: &Path) -> hdf5::Result<BlockFile> {
        let f = hdf5::File::create(path)?;
        attr_u64(&f, "fingerprint", self.fingerprint)?;
        attr_u64(&f, "block", block)?;
        attr_str(&f, "kind", &kind.name)?;
        let (r, d) = (self.records, self.dim);
        let rows = r.min(CHUNK_RECORDS);
        // A chunk is one piece of one path as the engine writes it: whole chunks, no read-back.
        let u = f.new_dataset::<f64>().shape([n, r, d]).chunk([1, rows, d]).deflate(4).create("u")?;
        let obs = if kind.observed {
            let k = OBSERVABLES.len();
            Some(f.new_dataset::<f64>().shape([n, r, k]).chunk([1, rows, k]).deflate(4).fill_value(f64::NAN).create("obs")?)
        } else {
            None
        };
        let eta = if kind.source == Source::Scheduled { Some(f.new_dataset::<f64>().shape([n, r]).chunk([1, rows]).deflate(4).create("eta")?) } else { None };
        Ok(BlockFile { file: Some(f), u: Some(u), obs, eta, tmp: path.to_path_buf(), dest: self.file(&kind.name, block) })
    }
}

/// Whether `name` is a block file the store writes: `block-NNNNNN.h5` (the
/// number as [`SampleStore::relative`] writes it), or with `partial`, also one
/// still being written.
fn is_block_file(name: &str, partial: bool) -> bool {
    let Some(rest) = name.strip_prefix("block-") else { return false };
    let digits = rest.strip_suffix(".h5").or_else(|| rest.strip_suffix(".h5.partial").filter(|_| partial));
    digits.is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()) && d.parse::<u64>().is_ok_and(|n| format!("{n:06}") == d))
}

/// A block file being written under its temporary name.
struct BlockFile {
    file: Option<hdf5::File>,
    u: Option<hdf5::Dataset>,
    obs: Option<hdf5::Dataset>,
    eta: Option<hdf5::Dataset>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl BlockWriter for BlockFile {
    fn write(&mut self, path: usize, first: usize, u: &[f64], obs: &[f64], eta: &[f64]) -> Result<(), String> {
        let err = |e: hdf5::Error| format!("cannot write {}: {e}", self.tmp.display());
        let width = |ds: &hdf5::Dataset| ds.shape()[2];
        let ud = self.u.as_ref().expect("an open block");
        let n = u.len() / width(ud);
        let view = |x: &[f64], w: usize| ndarray::ArrayView2::from_shape((n, w), x).expect("whole records").to_owned();
        ud.write_slice(&view(u, width(ud)), (path, first..first + n, ..)).map_err(err)?;
        if let Some(ds) = &self.obs {
            ds.write_slice(&view(obs, width(ds)), (path, first..first + n, ..)).map_err(err)?;
        }
        if let Some(ds) = &self.eta {
            ds.write_slice(eta, (path, first..first + n)).map_err(err)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        // HDF5 closes a file only when no dataset of it is open: close the datasets, then the
        // file, then sync, and only then rename, so a file under the final name is always
        // complete (a kill right after the rename found it half-written before).
        (self.u.take(), self.obs.take(), self.eta.take());
        if let Some(f) = self.file.take() {
            f.close().map_err(|e| format!("cannot close {}: {e}", self.tmp.display()))?;
        }
        std::fs::File::open(&self.tmp).and_then(|f| f.sync_all()).map_err(|e| format!("cannot sync {}: {e}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| format!("cannot rename {} to {}: {e}", self.tmp.display(), self.dest.display()))
    }
}

impl Drop for BlockFile {
    fn drop(&mut self) {
        // An unfinished block (stop, divergence) leaves nothing behind.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl SampleSink for SampleStore {
    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn has(&self, kind: &SampleKind, block: u64) -> Result<bool, String> {
        let path = self.file(&kind.name, block);
        if !path.exists() {
            return Ok(false);
        }
        if !path.is_file() {
            return Err(format!("{} is not a file; remove it to recompute that block", path.display()));
        }
        let fp = hdf5::File::open(&path).and_then(|f| f.attr("fingerprint")?.read_scalar::<u64>());
        match fp {
            Ok(fp) if fp == self.fingerprint => Ok(true),
            Ok(_) => Err(format!("{} holds samples of another study (or another build); use another --out, or --force to start over", path.display())),
            Err(e) => Err(format!("{} is unreadable ({}); remove it to recompute that block", path.display(), crate::data::one_line(&e.to_string()))),
        }
    }

    fn open(&self, kind: &SampleKind, block: u64, paths: usize) -> Result<Box<dyn BlockWriter>, String> {
        let path = self.file(&kind.name, block);
        let dir = path.parent().expect("a block file has a folder");
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let tmp = path.with_extension("h5.partial");
        Ok(Box::new(self.create(kind, block, paths, &tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?))
    }
}

/// Writes `long_run.h5` at `path` (via a temporary name): attributes, the
/// record times, the data, and one virtual dataset per kind over its block files.
pub fn write_long_run(path: &Path, job: &Job, summary: &LongRunSummary, info: &RunInfo) -> hdf5::Result<()> {
    let lr = job.long_run.as_ref().expect("a long-run job");
    let tmp = path.with_extension("h5.partial");
    let _ = std::fs::remove_file(&tmp);
    {
        let f = hdf5::File::create(&tmp)?;
        attr_str(&f, "study", "long-run")?;
        attr_str(&f, "job", &job.text)?;
        attr_str(&f, "crate_version", env!("CARGO_PKG_VERSION"))?;
        attr_str(&f, "git_commit", env!("GANSDE_GIT_COMMIT"))?;
        attr_str(&f, "rng_scheme", crate::rng::RNG_SCHEME)?;
        attr_u64(&f, "block_size", lr.block)?;
        attr_u64(&f, "seed", job.seed)?;
        attr_u64(&f, "fingerprint", job.fingerprint)?;
        attr_u64(&f, "ranks", info.ranks as u64)?;
        attr_u64(&f, "threads", info.threads as u64)?;
        attr_str(&f, "created_utc", &utc_now())?;
        attr_f64(&f, "elapsed_seconds", summary.elapsed.as_secs_f64())?;
        attr_u64(&f, "chain_steps_run", summary.chain_steps_run)?;
        attr_f64(&f, "eta", lr.eta)?;
        attr_u64(&f, "batch", job.batch as u64)?;
        attr_f64(&f, "burn_in", lr.burn_in)?;
        attr_u64(&f, "first_stationary_record", lr.first_stationary() as u64)?;
        attr_u64(&f, "observe_every", lr.observe_every as u64)?;
        attr_u64(&f, "dim_theta", job.game().dim_theta() as u64)?;
        attr_str(&f, "noise", job.sde.noise.name())?;
        attr_str(&f, "integrator", job.sde.integrator.name())?;
        attr_str(&f, "trace_method", &lr.trace.describe())?;
        let data = f.create_group("data")?;
        dataset(&data, "latent", &[job.latent.n, job.latent.dim], &job.latent.data, "latent samples z_i, one per row")?;
        dataset(&data, "real", &[job.real.n, job.real.dim], &job.real.data, "real samples x_j, one per row (after standardisation if asked)")?;
        let times: Vec<f64> = (0..lr.records).map(|r| lr.record_time(r)).collect();
        dataset(&f, "record_time", &[lr.records], &times, "time t = step · η of each record")?;
        let names: Vec<hdf5::types::VarLenUnicode> = OBSERVABLES.iter().map(|s| super::results::vstr(s)).collect();
        let ds = f.new_dataset::<hdf5::types::VarLenUnicode>().shape([names.len()]).create("observable_names")?;
        ds.write_raw(&names)?;
        attr_str(&ds, "units", "names of the per-sample FDR terms, the last axis of observables/<kind>")?;
        let d = job.game().dim();
        attr_u64(&f, "bins", lr.bins as u64)?;
        let lags: Vec<u64> = lr.lags.iter().map(|&l| l as u64).collect();
        dataset(&f, "lag_records", &[lags.len()], &lags, "β lags in records (multiply by record spacing for time)")?;
        let w: Vec<f64> = lr.projections.iter().flat_map(|p| p.weights.iter().copied()).collect();
        dataset(&f, "projection_weights", &[lr.projections.len(), d], &w, "weights of the linear functionals of u whose β(s) is estimated")?;
        let pn: Vec<hdf5::types::VarLenUnicode> = lr.projections.iter().map(|p| super::results::vstr(&p.name)).collect();
        let ds = f.new_dataset::<hdf5::types::VarLenUnicode>().shape([pn.len()]).create("projection_names")?;
        ds.write_raw(&pn)?;
        attr_str(&ds, "units", "names of the projections, the rows of projection_weights")?;
        for g in ["samples", "observables", "eta"] {
            f.create_group(g)?;
        }
        for (ki, kind) in summary.kinds.iter().enumerate() {
            let p = kind.paths as usize;
            let blocks = summary.blocks[ki];
            let mut sets = vec![("samples", "u", d)];
            if kind.observed {
                sets.push(("observables", "obs", OBSERVABLES.len()));
            }
            if kind.source == Source::Scheduled {
                sets.push(("eta", "eta", 0));
            }
            for (group, src, width) in sets {
                let mut b = f.group(group)?.new_dataset::<f64>();
                b = b.fill_value(f64::NAN);
                let full: Vec<usize> = if width > 0 { vec![p, lr.records, width] } else { vec![p, lr.records] };
                let mut builder = b.shape(full.clone());
                for blk in 0..blocks {
                    let lo = (blk * lr.block) as usize;
                    let n = (p - lo).min(lr.block as usize);
                    let file = SampleStore::relative(&kind.name, blk);
                    builder = if width > 0 {
                        builder.virtual_map(file, src, [n, lr.records, width], (.., .., ..), full.clone(), (lo..lo + n, .., ..))
                    } else {
                        builder.virtual_map(file, src, [n, lr.records], (.., ..), full.clone(), (lo..lo + n, ..))
                    };
                }
                let ds = builder.create(kind.name.as_str())?;
                attr_str(
                    &ds,
                    "units",
                    if group == "samples" {
                        "u = (θ, ω) per [path, record, coordinate]"
                    } else if group == "eta" {
                        "learning rate per [path, record]"
                    } else {
                        "per-sample FDR terms per [path, record, term] (see observable_names); NaN where not evaluated"
                    },
                )?;
                attr_str(
                    &ds,
                    "source",
                    match kind.source {
                        Source::Sga => "sga",
                        Source::Scheduled => "sga-scheduled",
                        Source::Sde => "sde",
                    },
                )?;
                attr_str(&ds, "scheme", kind.scheme.name())?;
                attr_str(&ds, "drift", kind.drift.name())?;
                attr_f64(&ds, "step", kind.step)?;
            }
        }
    }
    std::fs::rename(&tmp, path).map_err(|e| hdf5::Error::from(format!("cannot rename {}: {e}", tmp.display()).as_str()))
}
