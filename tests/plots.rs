//! The plots of a study (`gansde::report::plot::plot_study`) on results files
//! written by the real binary: a weak-error study of `jobs/lq.toml` and a
//! tiny long-run study of `jobs/long-run-lq.toml`. Every expected plot exists
//! as PNG and SVG; the PNGs decode at the documented size and are not blank;
//! the SVGs hold the axis labels, legend texts and line elements; a file that
//! is not a results file is refused with its name in the message.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use gansde::report::plot::{grid_size, plot_study, PlotError, PLOT_SIZE};

mod common;
use common::NO_HDF5_LOCKING;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `gansde <study> <job> --out <out> --set ...`; panics unless it exits 0.
fn run(study: &str, job: &str, out: &Path, set: &[&str]) -> PathBuf {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gansde"));
    c.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1).args([study, "--quiet", "--threads", "2", "--out"]).arg(out).arg(root().join(job));
    for s in set {
        c.args(["--set", s]);
    }
    let o = c.output().expect("gansde runs");
    assert!(o.status.success(), "{study} failed: {}", String::from_utf8_lossy(&o.stderr));
    out.join(if study == "weak-error" { "weak_error.h5" } else { "long_run.h5" })
}

/// Width, height and the RGB(A) pixels of a PNG.
fn decode_png(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file)).read_info().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = &buf[..info.buffer_size()];
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("{}: unexpected colour type {other:?}", path.display()),
    };
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let px = bytes.chunks_exact(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (info.width, info.height, px)
}

/// The PNG decodes at `size` and is a drawing: many distinct colours
/// (anti-aliased text and lines) and a fair share of non-white pixels.
fn check_png(path: &Path, size: (u32, u32)) {
    let (w, h, px) = decode_png(path);
    assert_eq!((w, h), size, "{}: size", path.display());
    let colours: HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(colours.len() >= 40, "{}: only {} distinct colours", path.display(), colours.len());
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / px.len() as f64;
    assert!(ink > 0.02, "{}: {:.3} of the pixels are not white", path.display(), ink);
}

/// The SVG text; it holds every string of `texts` and at least `lines`
/// line or polyline elements.
fn check_svg(path: &Path, size: (u32, u32), texts: &[&str], lines: usize) -> String {
    let svg = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(svg.starts_with("<svg"), "{}: not an SVG", path.display());
    assert!(svg.contains(&format!("width=\"{}\" height=\"{}\"", size.0, size.1)), "{}: size", path.display());
    for t in texts {
        assert!(svg.contains(&format!(">{t}")) || svg.contains(t), "{}: no text {t:?}", path.display());
    }
    let n = svg.matches("<line").count() + svg.matches("<polyline").count() + svg.matches("<path").count();
    assert!(n >= lines, "{}: {n} line elements, expected at least {lines}", path.display());
    svg
}

fn names(files: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn expected(stems: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = stems.iter().flat_map(|s| [format!("{s}.png"), format!("{s}.svg")]).collect();
    v.sort();
    v
}

fn read_f64(file: &Path, name: &str) -> Vec<f64> {
    let f = hdf5::File::open(file).unwrap();
    f.dataset(name).unwrap_or_else(|e| panic!("{name}: {e}")).read_raw::<f64>().unwrap()
}

#[test]
fn weak_error_plots_show_errors_intervals_and_reference_slopes() {
    let tmp = tempfile::tempdir().unwrap();
    let results = run("weak-error", "jobs/lq.toml", &tmp.path().join("we"), &["estimate.paths=2000"]);
    let dir = tmp.path().join("plots/nested");
    let files = plot_study(&results, &dir).expect("plots");
    assert_eq!(names(&files), expected(&["weak_error_alt", "weak_error_sml"]));
    for f in &files {
        assert!(f.starts_with(&dir) && f.is_file(), "{}", f.display());
    }
    for scheme in ["alt", "sml"] {
        check_png(&dir.join(format!("weak_error_{scheme}.png")), PLOT_SIZE);
        // Per scheme: 3 functions × 4 η bars with caps, 3 fits at most, 2 reference lines.
        let svg = check_svg(
            &dir.join(format!("weak_error_{scheme}.svg")),
            PLOT_SIZE,
            &[
                "learning rate η",
                "|E f(SGA) − E f(SDE)|",
                "slope 1",
                "slope 2",
                "theta1: order",
                "norm2: order",
                "theta1*omega1: order",
                "not resolved",
                "± 1.96 SE",
                &format!("{} vs SDE", scheme.to_uppercase()),
                "paper order",
            ],
            3 * 4 * 2,
        );
        // One marker per (function, η): a white disc under a coloured circle.
        assert!(svg.matches("<circle").count() >= 2 * 12, "weak_error_{scheme}.svg: too few markers");
        // The fitted orders in the file appear in the legend.
        let order = read_f64(&results, &format!("weak_error/{scheme}/order"));
        let hw = read_f64(&results, &format!("weak_error/{scheme}/order_half_width"));
        for (o, h) in order.iter().zip(&hw) {
            if o.is_finite() {
                assert!(svg.contains(&format!("order {o:.2} ± {h:.2}")), "weak_error_{scheme}.svg: order {o:.2} not in the legend");
            }
        }
    }
    // A study with SML only plotted into the same folder replaces the SML
    // plots and removes the ALT ones it does not draw; anything else in the
    // folder (a researcher's own files, whatever their names; a long-run plot)
    // stays.
    let user = ["weak_error_mine.png", "weak_error_alt_old.svg", "my_figure.png", "beta_sde_alt.svg", "notes.txt"];
    for f in user {
        std::fs::write(dir.join(f), "x").unwrap();
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    let sml = run("weak-error", "jobs/lq.toml", &tmp.path().join("we-sml"), &["estimate.paths=2000", "sga.schemes=[\"sml\"]"]);
    assert_eq!(names(&plot_study(&sml, &dir).unwrap()), expected(&["weak_error_sml"]));
    assert!(!dir.join("weak_error_alt.png").exists() && !dir.join("weak_error_alt.svg").exists(), "the earlier ALT plots stayed");
    for f in user.iter().chain(&["sub"]) {
        assert!(dir.join(f).exists(), "{f} must survive plotting");
    }
}

#[test]
fn weak_error_plots_per_record_time() {
    let tmp = tempfile::tempdir().unwrap();
    let results =
        run("weak-error", "jobs/lq.toml", &tmp.path().join("we"), &["estimate.paths=2000", "estimate.record_times=[1.0, 2.0]", "sga.schemes=[\"sml\"]"]);
    let files = plot_study(&results, &tmp.path().join("plots")).expect("plots");
    assert_eq!(names(&files), expected(&["weak_error_sml_t1", "weak_error_sml_t2"]));
    check_svg(&tmp.path().join("plots/weak_error_sml_t1.svg"), PLOT_SIZE, &["t = 1 ·", "slope 2"], 24);
    check_png(&tmp.path().join("plots/weak_error_sml_t2.png"), PLOT_SIZE);
}

#[test]
fn long_run_plots_show_marginals_mixing_and_convergence() {
    let tmp = tempfile::tempdir().unwrap();
    let results = run(
        "long-run",
        "jobs/long-run-lq.toml",
        &tmp.path().join("lr"),
        &["long_run.chains=40", "long_run.sde_paths=40", "sga.horizon=60.0", "long_run.burn_in=20.0", "long_run.block=10"],
    );
    let dir = tmp.path().join("plots");
    let files = plot_study(&results, &dir).expect("plots");
    let kinds = ["sde_alt", "sde_sml", "sga_alt", "sga_sml", "sga_sml_scheduled"];
    let mut stems: Vec<String> = vec!["marginals_alt".into(), "marginals_sml".into(), "eta_schedule_sga_sml_scheduled".into()];
    for k in kinds {
        stems.push(format!("convergence_{k}"));
        if k != "sga_sml_scheduled" {
            stems.push(format!("beta_{k}"));
        }
    }
    assert_eq!(names(&files), expected(&stems.iter().map(String::as_str).collect::<Vec<_>>()));

    // Marginals: 4 coordinates in a 2 × 2 grid, SGA and SDE densities overlaid.
    for scheme in ["alt", "sml"] {
        let stem = format!("marginals_{scheme}");
        check_png(&dir.join(format!("{stem}.png")), grid_size(4));
        let svg = check_svg(
            &dir.join(format!("{stem}.svg")),
            grid_size(4),
            &["Stationary marginals", "density", "value", "μ_η: SGA", "μ*: ", "θ1", "θ2", "ω1", "ω2", "W1(μ_η, μ*) =", "(noise "],
            4 * 2,
        );
        assert!(!svg.contains("first 12"), "{stem}: 4 coordinates are all shown");
        if scheme == "sml" {
            assert!(svg.contains("SGA, scheduled η"), "{stem}: the scheduled chains' marginals");
        }
    }
    // β(s): per projection the estimate, its floor, and the fit where a rate exists.
    for k in ["sde_alt", "sde_sml", "sga_alt", "sga_sml"] {
        let stem = format!("beta_{k}");
        check_png(&dir.join(format!("{stem}.png")), PLOT_SIZE);
        let svg = check_svg(
            &dir.join(format!("{stem}.svg")),
            PLOT_SIZE,
            &["lag s (time)", "β(s)", k, "theta1: β(s)", "omega1: floor", "[1,0,1,0]: β(s)", "3 × floor"],
            3 * 2,
        );
        let rates = read_f64(&results, &format!("analysis/{k}/beta_rate"));
        let fits = svg.matches("fit C·e^(−r s), r = ").count();
        assert_eq!(fits, rates.iter().filter(|r| r.is_finite()).count(), "{stem}: one fit per fitted rate");
        for r in rates.iter().filter(|r| r.is_finite()) {
            assert!(svg.contains(&format!("r = {r:.3}")), "{stem}: rate {r:.3} in the legend");
        }
    }
    // Convergence: W1(t) per coordinate with floor, burn-in and fitted rate.
    for k in kinds {
        let stem = format!("convergence_{k}");
        check_png(&dir.join(format!("{stem}.png")), grid_size(4));
        let svg = check_svg(&dir.join(format!("{stem}.svg")), grid_size(4), &["W1(t)", "floor", "burn-in", k, "θ1", "ω2"], 4 * 2);
        let rates = read_f64(&results, &format!("analysis/{k}/convergence_rate"));
        if k == "sga_sml_scheduled" {
            assert!(svg.contains("no rate (η varies)"), "{stem}");
        } else {
            assert!(svg.contains("time t"), "{stem}");
            for r in rates.iter().filter(|r| r.is_finite()) {
                assert!(svg.contains(&format!("rate {r:.3}")), "{stem}: rate {r:.3} shown");
            }
            // The fitted exponential is drawn (and in the legend) in each panel with a rate.
            assert_eq!(svg.matches("fit, rate ").count(), rates.iter().filter(|r| r.is_finite()).count(), "{stem}: one fit line per rate");
        }
    }
    check_png(&dir.join("eta_schedule_sga_sml_scheduled.png"), PLOT_SIZE);
    check_svg(&dir.join("eta_schedule_sga_sml_scheduled.svg"), PLOT_SIZE, &["mean learning rate η", "initial η₀ = 0.1"], 2);
}

#[test]
fn a_file_that_is_not_a_results_file_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("plots");

    let text = tmp.path().join("notes.h5");
    std::fs::write(&text, "not hdf5\n").unwrap();
    let e = plot_study(&text, &out).expect_err("a text file");
    assert!(matches!(e, PlotError::NotResults { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&text.display().to_string()) && !msg.contains('\n'), "{msg}");

    let bare = tmp.path().join("bare.h5");
    hdf5::File::create(&bare).unwrap().create_group("weak_error").unwrap();
    let msg = plot_study(&bare, &out).expect_err("an HDF5 file without `study`").to_string();
    assert!(msg.contains(&bare.display().to_string()) && msg.contains("not a gansde results file"), "{msg}");

    let other = tmp.path().join("other.h5");
    {
        let f = hdf5::File::create(&other).unwrap();
        f.new_attr::<hdf5::types::VarLenUnicode>().create("study").unwrap().write_scalar(&"weak-error".parse::<hdf5::types::VarLenUnicode>().unwrap()).unwrap();
    }
    let msg = plot_study(&other, &out).expect_err("a weak-error file without datasets").to_string();
    assert!(msg.contains(&other.display().to_string()) && msg.contains("weak_error/eta"), "{msg}");

    // A long-run study file without its analysis names the missing group.
    let mut c = Command::new(env!("CARGO_BIN_EXE_gansde"));
    c.env(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1);
    let unanalysed = tmp.path().join("lr-raw");
    c.args(["long-run", "--quiet", "--threads", "2", "--skip-analysis", "--out"]).arg(&unanalysed).arg(root().join("jobs/long-run-lq.toml"));
    c.args(["--set", "long_run.chains=10", "--set", "long_run.sde_paths=10", "--set", "sga.horizon=30.0", "--set", "long_run.burn_in=10.0"]);
    assert!(c.output().unwrap().status.success());
    let raw = unanalysed.join("long_run.h5");
    let msg = plot_study(&raw, &out).expect_err("no analysis").to_string();
    assert!(msg.contains(&raw.display().to_string()) && msg.contains("group analysis") && msg.contains("gansde analyze"), "{msg}");

    let missing = tmp.path().join("missing.h5");
    let msg = plot_study(&missing, &out).expect_err("no file").to_string();
    assert!(msg.contains(&missing.display().to_string()) && msg.contains("does not exist"), "{msg}");
    assert!(!out.exists(), "nothing is written for a refused file");
}
