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
    #[error("data file {path}: line {line}: {reason}")]
    Malformed { path: PathBuf, line: usize, reason: String },
    #[error("data file {path}: line {line}, column '{column}': '{value}' is not a number; every selected cell must be a finite number")]
    NotANumber { path: PathBuf, line: usize, column: String, value: String },
    #[error("data file {path}: line {line}, column '{column}': value {value} is not finite; every selected cell must be a finite number (no NaN or inf)")]
    NotFinite { path: PathBuf, line: usize, column: String, value: String },
    #[error("data file {path}: dataset '{dataset}', row {row}, column {column}: value {value} is not finite; every selected cell must be a finite number (no NaN or inf)")]
    NotFiniteRow { path: PathBuf, dataset: String, row: usize, column: usize, value: String },
    #[error("data file {path}: no column {column} (the header has: {available})")]
    NoColumn { path: PathBuf, column: String, available: String },
    #[error("data file {path}: no data rows")]
    Empty { path: PathBuf },
    /// `column` is ready to print: `'name'` for CSV, `2 of dataset 'x'` for HDF5.
    #[error("data file {path}: column {column} is constant, so it cannot be standardised")]
    Constant { path: PathBuf, column: String },
    #[error("data file {path}: {reason}")]
    Hdf5 { path: PathBuf, reason: String },
}

/// `s` on one line: control characters (newlines...) escaped as `\n` etc.
pub fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
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
            // Equal values can leave a rounding-size sd (the mean of 0.2s is not 0.2).
            let constant = (1..self.n).all(|i| self.data[i * self.dim + k] == self.data[k]);
            if constant || sd == 0.0 || !sd.is_finite() {
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

/// Samples read from a file with the file columns they came from.
#[derive(Clone, Debug, PartialEq)]
pub struct FileSamples {
    pub samples: Samples,
    /// The 0-based file column of each sample coordinate.
    pub picks: Vec<usize>,
    /// Each coordinate's column as messages name it: `'name'` (CSV) or
    /// `2 of dataset 'x'` (HDF5).
    pub labels: Vec<String>,
}

/// One CSV record: the line it starts on (1-based) and its fields.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits CSV text into records (RFC 4180): fields are separated by commas;
/// a field enclosed in double quotes may hold commas, line breaks and doubled
/// quotes `""`; whitespace around a field is dropped. Blank lines are skipped.
/// A malformed quote is reported as (line, reason).
fn csv_records(text: &str) -> Result<Vec<Record>, (usize, String)> {
    let mut records = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut cur = String::new();
    // Inside a quoted field; the current field was quoted (and has closed).
    let (mut in_quotes, mut quoted, mut closed) = (false, false, false);
    let (mut line, mut record_line, mut quote_line) = (1usize, 1usize, 1usize);
    let mut chars = text.chars().peekable();
    let finish_field = |fields: &mut Vec<String>, cur: &mut String, quoted: bool| {
        fields.push(if quoted { std::mem::take(cur) } else { std::mem::take(cur).trim().to_string() });
    };
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cur.push('"');
                }
                '"' => {
                    in_quotes = false;
                    closed = true;
                }
                '\n' => {
                    line += 1;
                    cur.push(c);
                }
                _ => cur.push(c),
            }
            continue;
        }
        match c {
            ',' => {
                finish_field(&mut fields, &mut cur, quoted);
                (quoted, closed) = (false, false);
            }
            '\n' => {
                finish_field(&mut fields, &mut cur, quoted);
                let blank = fields.len() == 1 && !quoted && fields[0].is_empty();
                if !blank {
                    records.push(Record { line: record_line, fields: std::mem::take(&mut fields) });
                }
                fields.clear();
                (quoted, closed) = (false, false);
                line += 1;
                record_line = line;
            }
            '"' if !quoted && cur.trim().is_empty() => {
                cur.clear();
                (in_quotes, quoted, quote_line) = (true, true, line);
            }
            c if closed => {
                if !c.is_whitespace() {
                    return Err((line, "text after the closing quote of a quoted field (write a quote inside a quoted field as \"\")".into()));
                }
            }
            c => cur.push(c),
        }
    }
    if in_quotes {
        return Err((quote_line, "a quoted field is not closed (missing closing \")".into()));
    }
    finish_field(&mut fields, &mut cur, quoted);
    if !(fields.len() == 1 && !quoted && fields[0].is_empty()) {
        records.push(Record { line: record_line, fields });
    }
    Ok(records)
}

/// Reads a CSV file with one header row; keeps `columns` (all when None).
pub fn read_csv(path: &Path, columns: Option<&[Column]>) -> Result<Samples, DataError> {
    load_csv(path, columns).map(|f| f.samples)
}

/// [`read_csv`], also returning the columns picked. A UTF-8 byte-order mark
/// is ignored; fields follow RFC 4180 (see [`csv_records`]).
pub fn load_csv(path: &Path, columns: Option<&[Column]>) -> Result<FileSamples, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::Unreadable { path: path.to_path_buf(), reason: e.to_string() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let records = csv_records(text).map_err(|(line, reason)| DataError::Malformed { path: path.to_path_buf(), line, reason })?;
    let mut records = records.into_iter();
    let header: Vec<String> = match records.next() {
        Some(h) => h.fields,
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
                    column: one_line(&c.to_string()),
                    available: one_line(&header.iter().enumerate().map(|(i, h)| format!("{i}:{h}")).collect::<Vec<_>>().join(", ")),
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut data = Vec::new();
    let mut n = 0;
    for Record { line, fields } in records {
        if fields.len() != header.len() {
            return Err(DataError::Ragged { path: path.to_path_buf(), line, expected: header.len(), found: fields.len() });
        }
        for &k in &picks {
            let raw = fields[k].trim();
            let v: f64 =
                raw.parse().map_err(|_| DataError::NotANumber { path: path.to_path_buf(), line, column: one_line(&header[k]), value: one_line(raw) })?;
            if !v.is_finite() {
                return Err(DataError::NotFinite { path: path.to_path_buf(), line, column: one_line(&header[k]), value: one_line(raw) });
            }
            data.push(v);
        }
        n += 1;
    }
    if n == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    let labels = picks.iter().map(|&k| format!("'{}'", one_line(&header[k]))).collect();
    Ok(FileSamples { samples: Samples { n, dim: picks.len(), data }, picks, labels })
}

/// Reads a 1-D or 2-D numeric HDF5 dataset (rows are samples); keeps the
/// columns given by index.
pub fn read_hdf5(path: &Path, dataset: &str, columns: Option<&[Column]>) -> Result<Samples, DataError> {
    load_hdf5(path, dataset, columns).map(|f| f.samples)
}

/// [`read_hdf5`], also returning the columns picked.
pub fn load_hdf5(path: &Path, dataset: &str, columns: Option<&[Column]>) -> Result<FileSamples, DataError> {
    let err = |reason: String| DataError::Hdf5 { path: path.to_path_buf(), reason };
    if !path.exists() {
        return Err(DataError::Unreadable { path: path.to_path_buf(), reason: "no such file".into() });
    }
    let file = hdf5::File::open(path).map_err(|e| err(one_line(&format!("cannot open as HDF5: {e}"))))?;
    let shown = one_line(dataset);
    let ds = file.dataset(dataset).map_err(|_| err(format!("no dataset '{shown}'")))?;
    let shape = ds.shape();
    let (rows, cols) = match shape.as_slice() {
        [r] => (*r, 1),
        [r, c] => (*r, *c),
        _ => return Err(err(format!("dataset '{shown}' has shape {shape:?}; expected 1-D or 2-D"))),
    };
    let range = match cols {
        0 => "it has no columns".to_string(),
        1 => "it has 1 column: select it by index 0".to_string(),
        k => format!("it has {k} columns: select by index, 0 to {}", k - 1),
    };
    let picks: Vec<usize> = match columns {
        None => (0..cols).collect(),
        Some(cs) => cs
            .iter()
            .map(|c| match c {
                Column::Index(i) if *i < cols => Ok(*i),
                Column::Index(i) => Err(err(format!("dataset '{shown}' has no column {i}; {range}"))),
                Column::Name(s) if cols == 0 => {
                    Err(err(format!("column '{}': HDF5 datasets have no header, and dataset '{shown}' has no columns", one_line(s))))
                }
                Column::Name(s) => Err(err(format!("column '{}': HDF5 datasets have no header; select columns by index, 0 to {}", one_line(s), cols - 1))),
            })
            .collect::<Result<_, _>>()?,
    };
    if rows == 0 {
        return Err(DataError::Empty { path: path.to_path_buf() });
    }
    let raw: Vec<f64> = ds.read_raw().map_err(|e| err(one_line(&format!("dataset '{shown}' is not numeric: {e}"))))?;
    let mut data = Vec::with_capacity(rows * picks.len());
    for r in 0..rows {
        for &k in &picks {
            let v = raw[r * cols + k];
            if !v.is_finite() {
                return Err(DataError::NotFiniteRow { path: path.to_path_buf(), dataset: shown.clone(), row: r + 1, column: k, value: v.to_string() });
            }
            data.push(v);
        }
    }
    let labels = picks.iter().map(|k| format!("{k} of dataset '{shown}'")).collect();
    Ok(FileSamples { samples: Samples { n: rows, dim: picks.len(), data }, picks, labels })
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
    fn csv_quoted_fields_and_bom() {
        let f = write("\u{feff}\"x\",\"a, \"\"b\"\"\", y\r\n1,\"t, \"\"u\"\"\",2\r\n\n3, \"multi\nline\" ,\"4\"\n");
        let s = load_csv(f.path(), Some(&[Column::Name("x".into()), Column::Name("y".into())])).unwrap();
        assert_eq!(s.samples.data, vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.labels, vec!["'x'", "'y'"]);
        let s = load_csv(f.path(), Some(&[Column::Name("a, \"b\"".into())])).unwrap_err().to_string();
        assert!(s.contains("line 2, column 'a, \"b\"': 't, \"u\"' is not a number"), "{s}");
        // A line break inside quotes keeps the record's first line; later lines count on.
        let f = write("x,y\n\"1\n\",2\n3\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 4: expected 2 fields"), "{e}");
        let f = write("x,y\n1,\"2\n3,4\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 2: a quoted field is not closed"), "{e}");
        let f = write("x,y\n1,\"2\"x\n");
        let e = read_csv(f.path(), None).unwrap_err().to_string();
        assert!(e.contains("line 2: text after the closing quote"), "{e}");
    }

    #[test]
    fn equal_values_are_constant() {
        let mut s = Samples::from_rows(&[vec![1.0, 0.2], vec![2.0, 0.2], vec![6.0, 0.2]]);
        assert_eq!(s.standardize(), Err(1));
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
