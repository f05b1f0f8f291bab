//! Which files in a plot folder gansde drew: `.gansde-plots` lists them, one
//! `<study> <file name>` per line, so a new plot of a study replaces exactly
//! the earlier plots of that kind of study and nothing a researcher put there
//! (whatever its name).

use std::path::{Path, PathBuf};

/// The manifest file in a plot folder.
pub const MANIFEST: &str = ".gansde-plots";

/// Records `drawn` (files in `dir`) as the plots of `study`, and removes the
/// files the manifest listed for `study` before that are not among them.
/// Entries of other studies are kept. The manifest is replaced atomically.
pub fn replace_earlier_plots(dir: &Path, study: &str, drawn: &[PathBuf]) -> std::io::Result<()> {
    let path = dir.join(MANIFEST);
    // A line that is not UTF-8 names no file gansde wrote; the others still count.
    let earlier = std::fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let names: Vec<String> = drawn.iter().filter_map(|f| f.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    let mut kept = String::new();
    for line in earlier.lines() {
        let Some((s, name)) = line.split_once(' ') else { continue };
        if s != study {
            kept.push_str(line);
            kept.push('\n');
        } else if !names.iter().any(|n| n == name) && is_plain_name(name) {
            let file = dir.join(name);
            if file.is_file() {
                std::fs::remove_file(&file)?;
            }
        }
    }
    for n in &names {
        kept.push_str(&format!("{study} {n}\n"));
    }
    let tmp = dir.join(format!("{MANIFEST}.partial"));
    let written = std::fs::write(&tmp, kept).and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// A bare file name: a manifest edited by hand cannot point outside its folder.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
        names
            .iter()
            .map(|n| {
                let f = dir.join(n);
                std::fs::write(&f, "x").unwrap();
                f
            })
            .collect()
    }

    #[test]
    fn only_the_earlier_plots_of_the_same_study_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let first = touch(d, &["weak_error_alt.png", "weak_error_sml.png"]);
        replace_earlier_plots(d, "weak-error", &first).unwrap();
        let lr = touch(d, &["beta_sde_alt_theta1.png"]);
        replace_earlier_plots(d, "long-run", &lr).unwrap();
        // A researcher's files, some with names like gansde's.
        touch(d, &["weak_error_mine.png", "beta_old.png", "notes.txt"]);
        // The next weak-error study has SML only.
        let second = touch(d, &["weak_error_sml.png"]);
        replace_earlier_plots(d, "weak-error", &second).unwrap();
        assert!(!d.join("weak_error_alt.png").exists(), "the earlier ALT plot stayed");
        for f in ["weak_error_sml.png", "beta_sde_alt_theta1.png", "weak_error_mine.png", "beta_old.png", "notes.txt"] {
            assert!(d.join(f).is_file(), "{f} was removed");
        }
        let manifest = std::fs::read_to_string(d.join(MANIFEST)).unwrap();
        assert_eq!(manifest, "long-run beta_sde_alt_theta1.png\nweak-error weak_error_sml.png\n");
    }

    #[test]
    fn a_line_that_is_not_utf8_spoils_only_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let first = touch(d, &["weak_error_alt.png", "weak_error_sml.png"]);
        replace_earlier_plots(d, "weak-error", &first).unwrap();
        let mut m = std::fs::read(d.join(MANIFEST)).unwrap();
        m.extend_from_slice(b"weak-error \xff.png\n");
        std::fs::write(d.join(MANIFEST), m).unwrap();
        replace_earlier_plots(d, "weak-error", &touch(d, &["weak_error_sml.png"])).unwrap();
        assert!(!d.join("weak_error_alt.png").exists(), "the earlier ALT plot stayed");
    }

    #[test]
    fn a_manifest_that_cannot_be_written_leaves_no_partial_file() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join(MANIFEST)).unwrap();
        assert!(replace_earlier_plots(d, "weak-error", &touch(d, &["weak_error_sml.png"])).is_err());
        assert!(!d.join(format!("{MANIFEST}.partial")).exists());
    }

    #[test]
    fn a_hand_edited_manifest_cannot_remove_files_elsewhere() {
        let tmp = tempfile::tempdir().unwrap();
        let plots = tmp.path().join("plots");
        std::fs::create_dir(&plots).unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "x").unwrap();
        std::fs::write(plots.join(MANIFEST), "weak-error ../precious.txt\nweak-error\n").unwrap();
        replace_earlier_plots(&plots, "weak-error", &[]).unwrap();
        assert!(tmp.path().join("precious.txt").is_file());
    }
}
