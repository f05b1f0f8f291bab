//! Records the code version so results files and saved state name the code
//! that made them: the git commit, plus a hash of the uncommitted changes to
//! tracked files when the tree is dirty (state from another build is refused).
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let o = Command::new("git").args(args).output().ok().filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn main() {
    let mut commit = git(&["rev-parse", "HEAD"]).map(|s| s.trim().to_string()).unwrap_or_else(|| "unknown".to_string());
    if let Some(diff) = git(&["diff", "HEAD"]).filter(|d| !d.is_empty()) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in diff.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        commit = format!("{commit}-dirty-{h:016x}");
    }
    println!("cargo:rustc-env=GANSDE_GIT_COMMIT={commit}");
    for p in [".git/HEAD", ".git/refs", ".git/index", "src", "Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={p}");
    }
}
