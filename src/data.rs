//! Data sets: real samples x_j from CSV or HDF5 files (column selection,
//! optional standardisation), latent samples z_i drawn once from the seed or
//! read from a file, and synthetic Gaussian samples for the `lq` game.

use std::path::{Path, PathBuf};

use crate::rng::{normal, stream, Role};

/// Problems with a data file, each naming the file (and line where there is one).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("data file {path}: cannot be read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("data file {path}: line {line}: expected {expected} fields (as in the header), found {found}")]
    Ragged { path: PathBuf, line: usize, expected: usize, found: usize },
    #[error("data file {path}: line {line}, column '{column}': '{value}' is not a number; every selected cell must be a finite number")]
    NotANumber { path: PathBuf, line: usize, column: String, value: String },
    #[error("data file {path}: line {line}, column '{column}': value {value} is not finite; every selected cell must be a finite number (no NaN or inf)")]
    NotFinite { path: PathBuf, line: usize, column: String, value: String },
    #[error("data file {path}: no column {column} (the header has: {available})")]
    NoColumn { path: PathBuf, column: String, available: String },
    #[error("data file {path}: no data rows")]
    Empty { path: PathBuf },
    #[error("data file {path}: column '{column}' is constant, so it cannot be standardised")]
    Constant { path: PathBuf, column: String },
    #[error("data file {path}: {reason}")]
    Hdf5 { path: PathBuf, reason: String },
}

/// n samples of dimension dim, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples {
    pub n: usize,
    pub dim: usize,
    pub data: Vec<f64>,
}

impl Samples {
    /// From equal-length rows.
    pub fn from_rows(rows: &[Vec<f64>]) -> Self {
        let dim = rows.first().map_or(0, |r| r.len());
        let data = rows.iter().flat_map(|r| r.iter().copied()).collect();
        Samples { n: rows.len(), dim, data }
    }

    /// Sample i.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The column means.
    pub fn column_means(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.dim];
        for i in 0..self.n {
            for (a, b) in m.iter_mut().zip(self.row(i)) {
                *a += b;
            }
        }
        m.iter_mut().for_each(|a| *a /= self.n as f64);
        m
    }

    /// Centres each column and divides by its sample standard deviation;
    /// returns the index of a constant column if there is one.
    pub fn standardize(&mut self) -> Result<(), usize> {
        let mean = self.column_means();
        for k in 0..self.dim {
            let ss: f64 = (0..self.n).map(|i| (self.data[i * self.dim + k] - mean[k]).powi(2)).sum();
            let sd = (ss / (self.n.max(2) - 1) as f64).sqrt();
            if sd == 0.0 || !sd.is_finite() {
                return Err(k);
            }
            for i in 0..self.n {
                let v = &mut self.data[i * self.dim + k];
                *v = (*v - mean[k]) / sd;
            }
        }
        Ok(())
    }
}

/// A column chosen by 0-based index or by header name.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum Column {
    Index(usize),
    Name(String),
}

impl std::fmt::Display for Column {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Column::Index(i) => write!(f, "{i}"),
            Column::Name(s) => write!(f, "'{s}'"),
        }
    }
}

/// Reads a CSV file with one header row; keeps `columns` (all when None).
pub fn read_csv(path: &Path, columns: Option<&[Column]>) -> Result<Samples, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<String> = match lines.next() {
        Some((_, h)) => h.split(',').map(|s| s.trim().trim_matches('"').to_string()).collect(),
        None => return Err(DataError::Empty { path: path.to_path_buf() }),
    };
    let picks: Vec<usize> = match columns {
        None => (0..header.len()).collect(),
        Some(cols) => cols
            .iter()
            .map(|c| {
                let k = match c {
                    Column::Index(i) => (*i < header.len()).then_some(*i),
                    Column::Name(s) => header.iter().position(|h| h == s),
                };
                k.ok_or_else(|| DataError::NoColumn {
                    path: path.to_path_buf(),
                    column: c.to_string(),
                    available: header.iter().enumerate().map(|(i, h)| format!("{i}:{h}")).collect::<Vec<_>>().join(", "),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut data = Vec::new();
    let mut n = 0;
    for (lineno, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(DataError::Ragged { path: path.to_path_buf(), line: lineno + 1, expected: header.len(), found: fields.len() });
        }
        for &k in &picks {
            let raw = fields[k].trim_matches('"');
            let v: f64 = raw.parse().map_err(|_| DataError::NotANumber {
                path: path.to_path_buf(),
                line: lineno + 1,
                column: header[k].clone(),
                value: raw.to_string(),
            })?;
            if !v.is_finite() {
                return Err(DataError::NotFinite { path: path.to_path_buf(), line: lineno + 1, column: header[k].clone(), value: raw.to_string() });
            }
            data.push(v);
        }
        n += 1;
    }
    if n == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    Ok(Samples { n, dim: picks.len(), data })
}

/// Reads a 1-D or 2-D numeric HDF5 dataset (rows are samples); keeps the
/// columns given by index.
pub fn read_hdf5(path: &Path, dataset: &str, columns: Option<&[Column]>) -> Result<Samples, DataError> {
    let err = |reason: String| DataError::Hdf5 { path: path.to_path_buf(), reason };
    if !path.exists() {
        return Err(DataError::Unreadable { path: path.to_path_buf(), reason: "no such file".into() });
    }
    let file = hdf5::File::open(path).map_err(|e| err(format!("cannot open as HDF5: {e}")))?;
    let ds = file.dataset(dataset).map_err(|_| err(format!("no dataset '{dataset}'")))?;
    let shape = ds.shape();
    let (rows, cols) = match shape.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        _ => return Err(err(format!("dataset '{dataset}' has shape {shape:?}; expected 1-D or 2-D"))),
    };
    let raw: Vec<f64> = ds.read_raw().map_err(|e| err(format!("dataset '{dataset}' is not numeric: {e}")))?;
    let picks: Vec<usize> = match columns {
        None => (0..cols).collect(),
        Some(cs) => cs
            .iter()
            .map(|c| match c {
                Column::Index(i) if *i < cols => Ok(*i),
                _ => Err(DataError::NoColumn { path: path.to_path_buf(), column: c.to_string(), available: format!("indices 0..{cols}") }),
            })
            .collect::<Result<_, _>>()?,
    };
    let mut data = Vec::with_capacity(rows * picks.len());
    for r in 0..rows {
        for &k in &picks {
            let v = raw[r * cols + k];
            if !v.is_finite() {
                return Err(DataError::NotFinite { path: path.to_path_buf(), line: r, column: k.to_string(), value: v.to_string() });
            }
            data.push(v);
        }
    }
    if rows == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    Ok(Samples { n: rows, dim: picks.len(), data })
}

/// The distribution of drawn samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Draw {
    /// Independent normals with these means and variances per coordinate.
    Normal { mean: Vec<f64>, var: Vec<f64> },
    /// Independent uniforms on [low, high] per coordinate.
    Uniform { low: Vec<f64>, high: Vec<f64> },
}

/// Draws `count` samples once per study from the seed's data stream `which`.
pub fn draw(seed: u64, which: u8, count: usize, dist: &Draw) -> Samples {
    let mut rng = stream(seed, 0, Role::Data(which), 0);
    use rand::RngExt;
    let dim = match dist {
        Draw::Normal { mean, .. } => mean.len(),
        Draw::Uniform { low, .. } => low.len(),
    };
    let mut data = Vec::with_capacity(count * dim);
    for _ in 0..count {
        for k in 0..dim {
            data.push(match dist {
                Draw::Normal { mean, var } => mean[k] + var[k].sqrt() * normal(&mut rng),
                Draw::Uniform { low, high } => low[k] + (high[k] - low[k]) * rng.random::<f64>(),
            });
        }
    }
    Samples { n: count, dim, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn csv_selects_columns_by_name_and_index() {
        let f = write("a,b,c\n1,2,3\n4,5,6\n");
        let s = read_csv(f.path(), Some(&[Column::Name("c".into()), Column::Index(0)])).unwrap();
        assert_eq!((s.n, s.dim), (2, 2));
        assert_eq!(s.data, vec![3.0, 1.0, 6.0, 4.0]);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let f = write("a,b\n1,2\n3\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("expected 2 fields"), "{e}");
        let f = write("a,b\n1,2\n3,x\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("'x' is not a number"), "{e}");
        let f = write("a,b\n1,NaN\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("not finite"), "{e}");
    }

    #[test]
    fn standardized_columns_have_zero_mean_unit_variance() {
        let mut s = Samples::from_rows(&[vec![1.0, 10.0], vec![2.0, 30.0], vec![6.0, 20.0]]);
        s.standardize().unwrap();
        for k in 0..2 {
            let m: f64 = (0..3).map(|i| s.row(i)[k]).sum::<f64>() / 3.0;
            let v: f64 = (0..3).map(|i| (s.row(i)[k] - m).powi(2)).sum::<f64>() / 2.0;
            assert!(m.abs() < 1e-15 && (v - 1.0).abs() < 1e-14);
        }
    }

    #[test]
    fn draws_have_requested_moments() {
        let s = draw(5, 0, 20_000, &Draw::Normal { mean: vec![0.3, -1.0], var: vec![1.0, 0.25] });
        let m = s.column_means();
        assert!((m[0] - 0.3).abs() < 0.03 && (m[1] + 1.0).abs() < 0.015, "{m:?}");
    }
}
