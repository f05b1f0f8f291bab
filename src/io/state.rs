//! Saved state for resume: the statistics of completed blocks, one file per
//! rank under `<out>/state/`, each written to a temporary name and renamed, so
//! a kill at any moment leaves either the previous file or the new one. Every
//! file starts with the study's fingerprint; state from another study is
//! refused. A resumed run reads every rank's file, so it may use a different
//! rank or thread layout.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"GANSDE-STATE-v1\n";

/// Why saved state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state in {dir} belongs to another study (its job, data or gansde build differ); remove {dir} or choose another --out")]
    Foreign { dir: PathBuf },
    #[error("state file {file} is damaged ({reason}); remove it to recompute its blocks")]
    Damaged { file: PathBuf, reason: String },
    #[error("cannot read state in {dir}: {reason}")]
    Unreadable { dir: PathBuf, reason: String },
}

/// The state folder of one study.
#[derive(Clone, Debug)]
pub struct StateStore {
    dir: PathBuf,
    fingerprint: u64,
}

impl StateStore {
    /// The store in `dir` for the study with this fingerprint.
    pub fn new(dir: PathBuf, fingerprint: u64) -> Self {
        StateStore { dir, fingerprint }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether any state file exists.
    pub fn exists(&self) -> bool {
        std::fs::read_dir(&self.dir).map(|mut d| d.any(|e| e.map(|e| e.file_name().to_string_lossy().ends_with(".state")).unwrap_or(false))).unwrap_or(false)
    }

    /// Every saved block (item index → encoded statistics) from all ranks' files.
    pub fn load(&self) -> Result<BTreeMap<u64, Vec<u8>>, StateError> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(StateError::Unreadable { dir: self.dir.clone(), reason: e.to_string() }),
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "state")).collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| StateError::Unreadable { dir: self.dir.clone(), reason: e.to_string() })?;
            let damaged = |reason: &str| StateError::Damaged { file: file.clone(), reason: reason.to_string() };
            if bytes.len() < 32 || &bytes[..16] != MAGIC {
                return Err(damaged("not a gansde state file"));
            }
            let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
            if word(16) != self.fingerprint {
                return Err(StateError::Foreign { dir: self.dir.clone() });
            }
            let count = word(24);
            let mut at = 32;
            for _ in 0..count {
                if at + 16 > bytes.len() {
                    return Err(damaged("truncated"));
                }
                let (idx, len) = (word(at), word(at + 8) as usize);
                at += 16;
                if at + len > bytes.len() {
                    return Err(damaged("truncated"));
                }
                out.insert(idx, bytes[at..at + len].to_vec());
                at += len;
            }
            if at != bytes.len() {
                return Err(damaged("trailing bytes"));
            }
        }
        Ok(out)
    }

    /// Replaces this rank's file with `blocks`, atomically.
    pub fn save(&self, rank: usize, blocks: &BTreeMap<u64, Vec<u8>>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("rank-{rank:05}.state"));
        let tmp = self.dir.join(format!("rank-{rank:05}.state.partial"));
        let mut buf = Vec::with_capacity(32 + blocks.values().map(|b| b.len() + 16).sum::<usize>());
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&self.fingerprint.to_le_bytes());
        buf.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
        for (idx, b) in blocks {
            buf.extend_from_slice(&idx.to_le_bytes());
            buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
            buf.extend_from_slice(b);
        }
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    /// Removes the folder (after the results file is complete).
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_merges_ranks_and_refuses_other_studies() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::new(dir.path().join("state"), 42);
        assert!(!s.exists());
        assert!(s.load().unwrap().is_empty());
        s.save(0, &BTreeMap::from([(3, vec![1, 2, 3]), (7, vec![])])).unwrap();
        s.save(4, &BTreeMap::from([(9, vec![9; 20])])).unwrap();
        assert!(s.exists());
        let all = s.load().unwrap();
        assert_eq!(all.keys().copied().collect::<Vec<_>>(), vec![3, 7, 9]);
        assert_eq!(all[&9], vec![9; 20]);
        let other = StateStore::new(dir.path().join("state"), 43);
        assert!(matches!(other.load(), Err(StateError::Foreign { .. })));
        std::fs::write(dir.path().join("state/rank-00004.state"), b"GANSDE-STATE-v1\nxxxxxxxx").unwrap();
        assert!(matches!(s.load(), Err(StateError::Damaged { .. })));
        s.clear().unwrap();
        assert!(!s.exists());
    }
}
