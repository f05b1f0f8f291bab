//! The batch scripts in slurm/ on a real one-node Slurm cluster, started on
//! this machine by scripts/start-local-slurm.sh (Debian's slurm-wlm and
//! munge; everything in a temporary folder) and stopped by
//! scripts/stop-local-slurm.sh when the test ends, failed or not.
//!
//! - slurm/weak-error.sbatch on a tiny `jobs/lq.toml` (2 ranks under mpirun),
//!   and again after it finished (exits 0, nothing to do);
//! - the same under `srun --mpi=pmix` (GANSDE_LAUNCHER=srun);
//! - slurm/long-run.sbatch on a tiny `jobs/long-run-lq.toml` (1 rank x 2
//!   threads from SLURM_CPUS_PER_TASK);
//! - slurm/sweep-array.sbatch over two tiny job files (one with a quoted flag);
//! - bad input (exit 2) and a diverging chain (exit 3): final, not requeued;
//! - a study that needs about two minutes on two cores, with --time=1 and
//!   --signal=B:USR1@10: signalled, saves, exits 75, requeues itself, resumes,
//!   and ends bit-identical (every dataset under weak_error/) to an
//!   uninterrupted run outside Slurm.
//!
//! Slurm holds a requeued job for AuthInfo's cred_expire (120 s by default)
//! before it may start again; the test cluster sets 10 s. Without the Slurm
//! daemons installed the test says so loudly and passes; with them it never
//! passes silently.
#![cfg(feature = "mpi")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Seconds of two-core compute the requeued study is sized for, from a
/// calibration run at the start (the machine may be shared): far more than
/// the 20–50 s a one-minute job gets before its warning.
const REQUEUE_SECONDS: f64 = 120.0;
/// Give up on the cluster after this long (the test takes 3–6 minutes).
const DEADLINE: Duration = Duration::from_secs(900);

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).chain(["/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"].map(PathBuf::from)).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The one-node cluster; dropping it stops every daemon it started (and a
/// half-started one too).
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: PathBuf) -> Cluster {
        let cluster = Cluster { conf: dir.join("slurm.conf"), dir };
        let o = Command::new("bash").arg(repo().join("scripts/start-local-slurm.sh")).arg(&cluster.dir).stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "scripts/start-local-slurm.sh failed:\n{}", text(&o));
        cluster
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).stdin(Stdio::null());
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let o = self.cmd(program).args(args).output().unwrap();
        assert!(o.status.success(), "{program} {args:?}:\n{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Submits `script` with sbatch from `work`; returns the job id.
    fn sbatch(&self, work: &Path, env: &[(&str, &str)], sbatch_args: &[&str], script: &str, script_args: &[&str]) -> u32 {
        let mut c = self.cmd("sbatch");
        c.current_dir(work).arg("--parsable").args(sbatch_args).arg(repo().join("slurm").join(script)).args(script_args);
        for (k, v) in env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "sbatch {script}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        out.trim().split(';').next().unwrap().parse().unwrap_or_else(|_| panic!("sbatch said {out:?}"))
    }

    /// `scontrol show job -o ID`: one record per job (per task of an array).
    fn jobs(&self, id: u32) -> Vec<BTreeMap<String, String>> {
        let o = self.cmd("scontrol").args(["show", "job", "-o", &id.to_string()]).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("JobId="))
            .map(|l| {
                // Values have no spaces except Command/paths we do not read.
                l.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
            })
            .collect()
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        for name in ["slurmctld", "slurmd"] {
            let t = std::fs::read_to_string(self.dir.join("log").join(format!("{name}.log"))).unwrap_or_default();
            let lines: Vec<&str> = t.lines().collect();
            s += &format!("--- {name}.log (last lines)\n{}\n", lines[lines.len().saturating_sub(25)..].join("\n"));
        }
        s
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(repo().join("scripts/stop-local-slurm.sh")).arg(&self.dir).stdin(Stdio::null()).status();
    }
}

const FINAL: [&str; 9] = ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED"];

/// A submitted batch job the test waits for.
struct Job {
    what: &'static str,
    id: u32,
    /// Array tasks expected (0 for a plain job).
    tasks: usize,
    /// Log files, relative to the work folder.
    logs: Vec<String>,
}

impl Job {
    fn done(&self, cluster: &Cluster) -> bool {
        let recs = cluster.jobs(self.id);
        let want = self.tasks.max(1);
        recs.len() == want && recs.iter().all(|r| FINAL.contains(&r.get("JobState").map_or("", String::as_str)))
    }

    fn log(&self, work: &Path, k: usize) -> String {
        std::fs::read_to_string(work.join(&self.logs[k])).unwrap_or_else(|e| format!("(no log {}: {e})", self.logs[k]))
    }

    /// Each record (one per task, by task id) with its log.
    fn results(&self, cluster: &Cluster, work: &Path) -> Vec<(BTreeMap<String, String>, String)> {
        let mut recs = cluster.jobs(self.id);
        recs.sort_by_key(|r| r.get("ArrayTaskId").and_then(|t| t.parse::<u32>().ok()).unwrap_or(0));
        recs.into_iter().enumerate().map(|(k, r)| (r, self.log(work, k))).collect()
    }
}

/// Every dataset under weak_error/ of `a` and `b` compared bit for bit;
/// returns how many there were.
fn compare_weak_error(a: &Path, b: &Path) -> usize {
    let script = r#"
import sys, h5py
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a["weak_error"].visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
other = []
b["weak_error"].visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
bad = []
if sorted(names) != sorted(other):
    bad.append("dataset lists differ: %s vs %s" % (sorted(names), sorted(other)))
for n in names:
    if n not in other:
        continue
    x, y = a["weak_error"][n][()], b["weak_error"][n][()]
    if x.dtype != y.dtype or x.shape != y.shape:
        bad.append("%s: %s%s vs %s%s" % (n, x.dtype, x.shape, y.dtype, y.shape))
    elif x.dtype.kind == "O":
        if x.tolist() != y.tolist():
            bad.append("%s: %s vs %s" % (n, x.tolist(), y.tolist()))
    elif x.tobytes() != y.tobytes():
        bad.append("%s: %s vs %s" % (n, x.ravel()[:6], y.ravel()[:6]))
print(len(names))
for m in bad:
    print("DIFFERS " + m)
"#;
    let o = Command::new("/usr/bin/python3").arg("-c").arg(script).arg(a).arg(b).output().expect("/usr/bin/python3 (python3-h5py) runs");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "h5py comparison failed:\n{}", text(&o));
    assert!(!out.contains("DIFFERS"), "{} and {} differ:\n{out}", a.display(), b.display());
    out.lines().next().unwrap().trim().parse().unwrap()
}

/// Root attribute `name` of a results file, as h5py prints it.
fn attr(file: &Path, name: &str) -> String {
    let o = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, h5py; print(h5py.File(sys.argv[1], 'r').attrs[sys.argv[2]])"])
        .arg(file)
        .arg(name)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}: {}", file.display(), text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// jobs/lq.toml with another seed and, if given, another path count.
fn lq_with(seed: u32, paths: Option<u32>) -> String {
    let lq = std::fs::read_to_string(repo().join("jobs/lq.toml")).unwrap();
    assert!(lq.contains("seed = 20231") && lq.contains("\npaths = 300000\n"), "jobs/lq.toml changed its seed or paths line");
    let lq = lq.replace("seed = 20231", &format!("seed = {seed}"));
    match paths {
        Some(p) => lq.replace("\npaths = 300000\n", &format!("\npaths = {p}\n")),
        None => lq,
    }
}

/// The lines of a job log written by the script (not by gansde or mpirun).
fn script_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.starts_with("gansde-slurm: ")).collect()
}

fn expect_exit(what: &str, rec: &BTreeMap<String, String>, log: &str, state: &str, code: &str) {
    assert_eq!(rec.get("JobState").map(String::as_str), Some(state), "{what}: {rec:?}\n{log}");
    assert_eq!(rec.get("ExitCode").map(String::as_str), Some(code), "{what}: {rec:?}\n{log}");
    assert_eq!(rec.get("Restarts").map(String::as_str), Some("0"), "{what}: requeued?\n{log}");
}

#[test]
fn the_scripts_share_their_run_block() {
    let block = |name: &str| {
        let s = std::fs::read_to_string(repo().join("slurm").join(name)).unwrap();
        let at = s.find("# ---- Run; requeue on exit 75").unwrap_or_else(|| panic!("{name}: no run block"));
        s[at..].to_string()
    };
    let w = block("weak-error.sbatch");
    assert_eq!(w, block("long-run.sbatch"), "slurm/long-run.sbatch: the run block differs from weak-error.sbatch");
    assert_eq!(w, block("sweep-array.sbatch"), "slurm/sweep-array.sbatch: the run block differs from weak-error.sbatch");
    for name in ["weak-error.sbatch", "long-run.sbatch", "sweep-array.sbatch"] {
        let s = std::fs::read_to_string(repo().join("slurm").join(name)).unwrap();
        for line in ["#SBATCH --requeue", "#SBATCH --open-mode=append", "#SBATCH --signal=B:USR1@", "#SBATCH --cpus-per-task=", "#SBATCH --ntasks="] {
            assert!(s.contains(line), "{name}: no '{line}'");
        }
        let o = Command::new("bash").arg("-n").arg(repo().join("slurm").join(name)).output().unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
}

#[test]
fn batch_scripts_on_a_local_slurm() {
    let t0 = Instant::now();
    let missing: Vec<&str> = ["slurmctld", "slurmd", "munged", "sbatch", "scontrol"].into_iter().filter(|p| find_program(p).is_none()).collect();
    if !missing.is_empty() {
        eprintln!(
            "\n*** SKIPPED tests/slurm.rs batch_scripts_on_a_local_slurm: {} not installed \
             (apt-get install slurm-wlm munge, or scripts/setup-debian.sh) ***\n",
            missing.join(", ")
        );
        return;
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        // slurmd runs jobs as the submitting user, so it needs root. CI runs as
        // root and must never skip; a developer's `cargo test` says so loudly.
        assert!(std::env::var_os("CI").is_none(), "tests/slurm.rs starts slurmd, which needs root (CI is set: not skipping)");
        eprintln!("\n*** SKIPPED tests/slurm.rs batch_scripts_on_a_local_slurm: slurmd needs root (run the suite as root to include it) ***\n");
        return;
    }

    // The test folder goes when the test ends, unless GANSDE_SLURM_KEEP is set.
    let tmp = tempfile::Builder::new().prefix("gansde-slurm-").tempdir().unwrap();
    let (_tmp, root) = if std::env::var_os("GANSDE_SLURM_KEEP").is_some() {
        let root = tmp.keep();
        eprintln!("slurm: keeping {} (GANSDE_SLURM_KEEP)", root.display());
        (None, root)
    } else {
        let root = tmp.path().to_path_buf();
        (Some(tmp), root)
    };
    let work = root.join("work");
    std::fs::create_dir_all(&work).unwrap();
    // A copy of the binary: a rebuild of target/ during the test cannot
    // change the build that saved state belongs to.
    let bin = root.join("gansde");
    std::fs::copy(env!("CARGO_BIN_EXE_gansde"), &bin).unwrap();
    let bin_s = bin.to_str().unwrap().to_string();

    // Job files: the requeued study, two for the sweep.
    std::fs::write(work.join("lq-requeue.toml"), lq_with(20231, None)).unwrap();
    std::fs::write(work.join("sweep-a.toml"), lq_with(11, Some(3000))).unwrap();
    std::fs::write(work.join("sweep-b.toml"), lq_with(12, Some(2000))).unwrap();
    std::fs::write(work.join("sweep.txt"), "# the sweep of tests/slurm.rs\nsweep-a.toml\n\nweak-error sweep-b.toml --set \"sga.eta=[0.2, 0.1]\"\n").unwrap();
    let lq = repo().join("jobs/lq.toml");
    let lq = lq.to_str().unwrap();
    let long_run = repo().join("jobs/long-run-lq.toml");
    let long_run = long_run.to_str().unwrap();

    // Size the requeued study for this machine as it is now: time a small
    // version on two threads (chain-steps are proportional to paths).
    let calib_paths = 20_000u64;
    let t = Instant::now();
    let o = Command::new(&bin)
        .current_dir(&work)
        .args(["weak-error", "lq-requeue.toml", "--out", "calibration", "--threads", "2", "--quiet"])
        .args(["--set", &format!("estimate.paths={calib_paths}")])
        .output()
        .unwrap();
    assert!(o.status.success(), "calibration run: {}", text(&o));
    let calib_secs = t.elapsed().as_secs_f64();
    let paths = ((calib_paths as f64 * REQUEUE_SECONDS / calib_secs) as u64 / 1000 * 1000).clamp(100_000, 1_000_000);
    eprintln!("slurm: calibration {calib_paths} paths in {calib_secs:.1} s on 2 threads -> requeued study of {paths} paths");
    let requeue_set = format!("estimate.paths={paths}");

    // The uninterrupted reference, outside Slurm, alongside the cluster's jobs.
    let reference_log = work.join("reference.log");
    let reference_start = Instant::now();
    let mut reference = Reap(
        Command::new(&bin)
            .current_dir(&work)
            .args(["weak-error", "lq-requeue.toml", "--out", "reference", "--threads", "2", "--quiet", "--set", &requeue_set])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&reference_log).unwrap())
            .stderr(std::fs::File::create(work.join("reference.err")).unwrap())
            .spawn()
            .unwrap(),
    );

    let cluster = Cluster::start(root.join("slurm"));
    eprintln!("slurm: cluster up after {:.1} s", t0.elapsed().as_secs_f64());
    let env = [("GANSDE_BIN", bin_s.as_str())];
    let tiny = ["--set", "estimate.paths=4000", "--quiet"];
    // The scripts ask for SIGUSR1 180 s before the time limit; a limit shorter
    // than that (plus Slurm's minute of slack) signals a job at once. The small
    // jobs get a short lead and a limit far above it: they are never signalled.
    let small = ["--time=5", "--signal=B:USR1@10"];
    let mut jobs: Vec<Job> = Vec::new();

    let mut submit = |what: &'static str, env: &[(&str, &str)], sbatch_args: &[&str], script: &str, args: &[&str], tasks: usize| -> u32 {
        let mut all = vec!["--job-name", what, "--output", if tasks == 0 { "%x-%j.out" } else { "%x-%A_%a.out" }];
        all.extend_from_slice(sbatch_args);
        let id = cluster.sbatch(&work, env, &all, script, args);
        let logs = if tasks == 0 { vec![format!("{what}-{id}.out")] } else { (0..tasks).map(|k| format!("{what}-{id}_{k}.out")).collect() };
        jobs.push(Job { what, id, tasks, logs });
        id
    };

    // Small jobs first: they finish in seconds.
    let w = [&small[..], &["--ntasks=2", "--cpus-per-task=1"]].concat();
    let tiny_id = submit("weak-error", &env, &w, "weak-error.sbatch", &[&[lq, "--out", "tiny"][..], &tiny].concat(), 0);
    let dep = format!("--dependency=afterok:{tiny_id}");
    submit(
        "weak-error-again",
        &env,
        &[&w[..], &[dep.as_str(), "--kill-on-invalid-dep=yes"]].concat(),
        "weak-error.sbatch",
        &[&[lq, "--out", "tiny"][..], &tiny].concat(),
        0,
    );
    let srun_env = [("GANSDE_BIN", bin_s.as_str()), ("GANSDE_LAUNCHER", "srun"), ("GANSDE_OUT", "tiny-srun")];
    submit("weak-error-srun", &srun_env, &w, "weak-error.sbatch", &[&[lq][..], &tiny].concat(), 0);
    let lr = [&small[..], &["--ntasks=1", "--cpus-per-task=2"]].concat();
    submit("long-run", &env, &lr, "long-run.sbatch", &[long_run, "--quiet", "--set", "long_run.chains=50", "--set", "long_run.sde_paths=50"], 0);
    let sweep_env = [("GANSDE_BIN", bin_s.as_str()), ("GANSDE_JOB_LIST", "sweep.txt")];
    let arr = [&small[..], &["--array=0-1", "--ntasks=1", "--cpus-per-task=1"]].concat();
    submit("sweep", &sweep_env, &arr, "sweep-array.sbatch", &["--quiet"], 2);
    submit("bad-input", &env, &w, "weak-error.sbatch", &[lq, "--out", "bad", "--set", "estimate.paths=1"], 0);
    submit(
        "diverged",
        &env,
        &w,
        "weak-error.sbatch",
        &[lq, "--out", "diverged", "--quiet", "--set", "estimate.paths=2000", "--set", "sga.init=[1e-4, 0.0, 0.0, 0.0]", "--set", "divergence.bound=1e-3"],
        0,
    );
    // The study that outlives its time limit.
    let rq = ["--ntasks=2", "--cpus-per-task=1", "--time=1", "--signal=B:USR1@10"];
    let requeue_id = submit("requeue", &env, &rq, "weak-error.sbatch", &["lq-requeue.toml", "--out", "requeued", "--set", &requeue_set], 0);

    // Wait for every job (Slurm holds the requeued one for cred_expire, 10 s here, each time).
    loop {
        if jobs.iter().all(|j| j.done(&cluster)) {
            break;
        }
        if t0.elapsed() > DEADLINE {
            let mut s = format!("jobs not finished after {} s:\n{}", DEADLINE.as_secs(), cluster.run("squeue", &[]));
            for j in &jobs {
                s += &format!("=== {} ({}): {:?}\n", j.what, j.id, cluster.jobs(j.id));
                for k in 0..j.logs.len() {
                    s += &j.log(&work, k);
                }
            }
            panic!("{s}{}", cluster.log_tail());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let slurm_secs = t0.elapsed().as_secs_f64();
    let status = reference.0.wait().unwrap();
    let reference_time = reference_start.elapsed();
    let reference_err = std::fs::read_to_string(work.join("reference.err")).unwrap_or_default();
    assert!(status.success(), "reference run: {status}: {reference_err}");

    let mut report = String::new();
    for j in &jobs {
        report += &format!("=== {} ({}): {:?}\n", j.what, j.id, cluster.jobs(j.id));
    }
    report += &format!("=== jobcomp.txt\n{}\n", std::fs::read_to_string(cluster.dir.join("jobcomp.txt")).unwrap_or_default());
    report += &cluster.log_tail();
    let _keep = Keep { report };
    let by = |what: &str| jobs.iter().find(|j| j.what == what).unwrap().results(&cluster, &work);
    let ok = |what: &str| {
        let r = by(what);
        for (rec, log) in &r {
            expect_exit(what, rec, log, "COMPLETED", "0:0");
            let lines = script_lines(log);
            assert!(lines.first().is_some_and(|l| l.contains(" start 1 on ")), "{what}: {log}");
            assert!(lines.last().is_some_and(|l| l.contains("study complete: ")), "{what}: {log}");
            assert!(log.contains(" --resume"), "{what}: every start passes --resume\n{log}");
        }
        r
    };

    // weak-error: 2 ranks x 1 thread, a fresh folder with --resume starts normally.
    let (_, log) = &ok("weak-error")[0];
    let file = work.join("tiny/weak_error.h5");
    assert_eq!((attr(&file, "ranks"), attr(&file, "threads")), ("2".into(), "1".into()), "{log}");
    assert!(log.contains("mpirun -n 2 --bind-to none") && log.contains(" --threads 1 "), "{log}");
    // ... submitted again when finished: nothing to do.
    let (_, log) = &ok("weak-error-again")[0];
    assert!(log.contains("study already complete") && log.contains("nothing to do"), "{log}");
    // srun --mpi=pmix
    let (_, log) = &ok("weak-error-srun")[0];
    assert!(log.contains("srun --mpi=pmix --ntasks=2 --cpus-per-task=1"), "{log}");
    assert_eq!(attr(&work.join("tiny-srun/weak_error.h5"), "ranks"), "2", "{log}");
    // long-run: 1 rank x 2 threads from SLURM_CPUS_PER_TASK.
    let (_, log) = &ok("long-run")[0];
    let file = work.join("results/long-run-lq/long_run.h5");
    assert_eq!((attr(&file, "ranks"), attr(&file, "threads")), ("1".into(), "2".into()), "{log}");
    // The sweep: one study per task, output named for the job file.
    let sweep = ok("sweep");
    assert!(sweep[0].1.contains("weak-error sweep-a.toml --out results/sweep-a"), "{}", sweep[0].1);
    assert!(sweep[1].1.contains("weak-error sweep-b.toml --out results/sweep-b"), "{}", sweep[1].1);
    assert_eq!(attr(&work.join("results/sweep-a/weak_error.h5"), "seed"), "11");
    assert_eq!(attr(&work.join("results/sweep-b/weak_error.h5"), "seed"), "12");
    let o = Command::new("/usr/bin/python3")
        .args(["-c", "import sys, h5py; print(list(h5py.File(sys.argv[1], 'r')['weak_error/eta'][:]))"])
        .arg(work.join("results/sweep-b/weak_error.h5"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "[0.2, 0.1]", "the quoted --set of the job list");
    // Final failures are not requeued.
    let (rec, log) = &by("bad-input")[0];
    expect_exit("bad-input", rec, log, "FAILED", "2:0");
    assert!(script_lines(log).last().is_some_and(|l| l.contains("not requeued: bad input (exit 2)")), "{log}");
    assert!(!work.join("bad/weak_error.h5").exists());
    let (rec, log) = &by("diverged")[0];
    expect_exit("diverged", rec, log, "FAILED", "3:0");
    assert!(script_lines(log).last().is_some_and(|l| l.contains("not requeued: a chain diverged (exit 3)")), "{log}");

    // The requeued study.
    let (rec, log) = &by("requeue")[0];
    let lines = script_lines(log);
    let starts: Vec<&&str> = lines.iter().filter(|l| l.contains(&format!("job {requeue_id} start "))).collect();
    let n = starts.len();
    let summary = lines.join("\n");
    assert!(n >= 2, "the study should outlive its one-minute limit at least once ({n} start):\n{log}");
    for (k, l) in starts.iter().enumerate() {
        assert!(l.contains(&format!(" start {} on ", k + 1)), "{summary}");
    }
    for k in 1..n {
        assert!(lines.iter().any(|l| l.contains(&format!("gansde exited with 75 (start {k})"))), "start {k} did not exit 75:\n{summary}");
        assert!(lines.iter().any(|l| l.contains(&format!("requeueing job {requeue_id}: start {}", k + 1))), "{summary}");
    }
    assert!(lines.iter().filter(|l| l.contains("got SIGUSR1")).count() >= n - 1, "{summary}");
    assert!(lines.iter().any(|l| l.contains(&format!("gansde exited with 0 (start {n})"))), "{summary}");
    assert!(log.contains("stopped by a signal; completed blocks are saved"), "{log}");
    assert!(log.contains("the rest resumed from saved state"), "{log}");
    expect_exit_restarted(rec, log, n);
    let jobcomp = std::fs::read_to_string(cluster.dir.join("jobcomp.txt")).unwrap_or_default();
    let ends: Vec<&str> = jobcomp
        .lines()
        .filter(|l| l.starts_with(&format!("JobId={requeue_id} ")))
        .map(|l| l.split_whitespace().find_map(|kv| kv.strip_prefix("JobState=")).unwrap_or("?"))
        .collect();
    assert_eq!(ends.len(), n, "{jobcomp}");
    assert_eq!(ends.last(), Some(&"COMPLETED"), "{jobcomp}");
    let datasets = compare_weak_error(&work.join("reference/weak_error.h5"), &work.join("requeued/weak_error.h5"));
    assert!(datasets >= 40, "only {datasets} datasets compared");
    assert!(!work.join("requeued/state").exists(), "state left after the study completed");

    let saved: Vec<&str> = log.lines().filter_map(|l| l.split("after saving ").nth(1)).filter_map(|s| s.split(' ').next()).collect();
    eprintln!("slurm: requeued study log (script lines):\n  {}", lines.join("\n  "));
    eprintln!("slurm: blocks saved by rank 0 at each stop: {saved:?}");
    eprintln!(
        "slurm: requeued study: {n} starts (exit 75 x {}, then 0), Restarts={}, job ends recorded {ends:?}; \
         {datasets} datasets under weak_error/ bit-identical to the uninterrupted run ({:.0} s)",
        n - 1,
        rec.get("Restarts").map_or("?", String::as_str),
        reference_time.as_secs_f64()
    );
    eprintln!("slurm: all jobs done after {slurm_secs:.0} s; test wall time {:.0} s", t0.elapsed().as_secs_f64());
    std::mem::forget(_keep);
}

/// A child process, ended if the test fails before it is waited for.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// On a failed check: prints every job's record, the job completions and
/// the daemons' last log lines.
struct Keep {
    report: String,
}

impl Drop for Keep {
    fn drop(&mut self) {
        eprintln!("{}", self.report);
    }
}

fn expect_exit_restarted(rec: &BTreeMap<String, String>, log: &str, starts: usize) {
    assert_eq!(rec.get("JobState").map(String::as_str), Some("COMPLETED"), "{rec:?}\n{log}");
    assert_eq!(rec.get("ExitCode").map(String::as_str), Some("0:0"), "{rec:?}\n{log}");
    assert_eq!(rec.get("Restarts").map(String::as_str), Some((starts - 1).to_string().as_str()), "{rec:?}\n{log}");
}
