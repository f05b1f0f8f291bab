//! The `mlp` model through the job file: every shipped mlp job validates, the
//! seeded random starting point is reproducible and part of the job, and the
//! mlp keys are checked with messages that name the key.

use std::path::PathBuf;

use gansde::job::{self, ModelSpec};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load(file: &str, set: &[&str]) -> Result<job::Job, String> {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    job::load(&root().join(file), &set).map_err(|e| e.to_string())
}

const IRIS: &str = "jobs/weak-error-iris-mlp.toml";

/// A job file with this text in a temporary folder beside a copy of iris.csv.
fn scratch_job(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::copy(root().join("jobs/data/iris.csv"), dir.path().join("data/iris.csv")).unwrap();
    let path = dir.path().join("job.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

#[test]
fn every_mlp_job_file_validates() {
    let files = [
        ("jobs/weak-error-iris-mlp.toml", 4, 2, 32, 25),
        ("jobs/weak-error-iris-mlp-vanilla.toml", 4, 2, 32, 25),
        ("jobs/long-run-iris-mlp.toml", 4, 2, 32, 25),
        ("jobs/weak-error-wine-mlp.toml", 13, 4, 301, 241),
        ("jobs/long-run-wine-mlp.toml", 13, 4, 301, 241),
        ("jobs/weak-error-digits-mlp.toml", 61, 8, 2301, 2017),
        ("jobs/long-run-digits-mlp.toml", 61, 8, 2301, 2017),
    ];
    for (file, dx, dz, dt, dw) in files {
        let job = load(file, &[]).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(matches!(job.model, ModelSpec::Mlp(_)), "{file}");
        assert_eq!((job.real.dim, job.latent.dim), (dx, dz), "{file}");
        let game = job.game();
        assert_eq!((game.dim_theta(), game.dim_omega()), (dt, dw), "{file}");
        assert_eq!(job.init.len(), dt + dw, "{file}");
        assert!(job.init.iter().all(|x| x.is_finite()), "{file}");
        // The loss and a gradient at u0 are finite.
        assert!(game.loss(&job.init).is_finite(), "{file}");
        let mut g = vec![0.0; dt + dw];
        game.full_grad(&job.init, &mut g, &mut game.scratch());
        assert!(g.iter().all(|x| x.is_finite()), "{file}");
        assert_eq!(job.long_run.is_some(), file.contains("long-run"), "{file}");
    }
}

#[test]
fn random_init_is_seeded_reproducible_and_scaled() {
    let a = load(IRIS, &[]).unwrap();
    let b = load(IRIS, &[]).unwrap();
    assert_eq!(a.init, b.init, "same job, same u0");
    assert_eq!(a.fingerprint, b.fingerprint);
    // The init stream is its own: the latent draws do not move it, and it moves with the seed.
    let other_seed = load(IRIS, &["seed=12"]).unwrap();
    assert_ne!(a.init, other_seed.init);
    assert_ne!(a.fingerprint, load(IRIS, &["sga.init_scale=1.0000001"]).unwrap().fingerprint, "init_scale is part of the identity");
    // init_scale multiplies the same draws.
    let half = load(IRIS, &["sga.init_scale=0.5"]).unwrap();
    for (x, y) in a.init.iter().zip(&half.init) {
        assert!((0.5 * x - y).abs() < 1e-15);
    }
    // Layout: biases (b₁ = u[8..12], b₂ = u[28..32], c = u[48..52], c₀ = u[56]) start at 0,
    // weights are N(0, 1/fan-in): W₁ (fan-in 2) spreads more than W₂ (fan-in 4).
    let u = &a.init;
    for k in (8..12).chain(28..32).chain(48..52).chain([56]) {
        assert_eq!(u[k], 0.0, "bias u[{k}]");
    }
    assert!(u[..8].iter().chain(&u[12..28]).chain(&u[32..48]).chain(&u[52..56]).all(|x| *x != 0.0));
    // Explicit vectors still work for mlp (init_scale then has no use and is refused).
    let list = format!("sga.init=[{}]", vec!["0.1"; 57].join(", "));
    let msg = load(IRIS, &[&list]).map(|_| ()).unwrap_err();
    assert!(msg.contains("sga.init_scale") && msg.contains("only used with sga.init = \"random\""), "{msg}");
    let text = std::fs::read_to_string(root().join(IRIS)).unwrap().replace("init_scale = 1.0", "");
    let (dir, path) = scratch_job(&text);
    assert_eq!(job::load(&path, &[list]).unwrap().init, vec![0.1; 57]);
    drop(dir);
    // And "random" works for the other models (i.i.d. N(0, scale²)).
    let q = load("jobs/quickstart.toml", &["sga.init=\"random\"", "sga.init_scale=0.3"]).unwrap();
    assert_eq!(q.init.len(), 12);
    assert!(q.init.iter().all(|x| x.abs() < 0.3 * 6.0) && q.init.iter().any(|x| *x != 0.0));
}

#[test]
fn mlp_keys_are_validated_with_the_key_named() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["game.activation_g=\"relu\""], &["game.activation_g", "unknown activation \"relu\"", "\"tanh\", \"softplus\", \"sigmoid\""]),
        (&["game.activation_d=\"gelu\""], &["game.activation_d", "\"gelu\""]),
        (&["game.loss=\"hinge\""], &["game.loss", "unknown loss \"hinge\"", "\"wasserstein\"", "\"vanilla\""]),
        (&["game.hidden_g=0"], &["game.hidden_g", "0 is not a hidden-layer width"]),
        (&["game.hidden_d=-3"], &["game.hidden_d", "-3 is not a hidden-layer width"]),
        (&["game.ridge_omega=-1.0"], &["game.ridge_theta", "ridge weights must be finite and ≥ 0"]),
        (&["game.A=[[1.0]]"], &["game.A", "only used by model \"lq\""]),
        (&["sga.init=\"zeros\""], &["sga.init", "\"zeros\" is not a starting point", "\"random\""]),
        (&["sga.init=3"], &["sga.init", "3 is not a starting point"]),
        (&["sga.init_scale=-0.5"], &["sga.init_scale", "-0.5 must be a finite number ≥ 0"]),
        (&["sga.init=[1.0]", "sga.init_scale=0.5"], &["sga.init_scale", "only used with sga.init = \"random\""]),
        (&["game.model=\"mlpx\""], &["game.model", "unknown model \"mlpx\"", "\"mlp\""]),
    ];
    for (set, want) in cases {
        let msg = load(IRIS, set).expect_err(&format!("{set:?} should be rejected"));
        for w in *want {
            assert!(msg.contains(w), "{set:?}: message {msg:?} lacks {w:?}");
        }
    }
    // Explicit starting points (quickstart: dim u = 8 + 4).
    let quick: &[(&str, &[&str])] = &[
        ("sga.init=[1.0, \"a\"]", &["sga.init", "\"a\" is not a number"]),
        ("sga.init=[1.0, 2.0]", &["sga.init", "has 2 entries", "dim θ + dim ω = 8 + 4 = 12"]),
        ("sga.init_scale=0.5", &["sga.init_scale", "only used with sga.init = \"random\""]),
    ];
    for (set, want) in quick {
        let msg = load("jobs/quickstart.toml", &[set]).expect_err(set);
        for w in *want {
            assert!(msg.contains(w), "{set}: message {msg:?} lacks {w:?}");
        }
    }
    // A missing width is named.
    let text = std::fs::read_to_string(root().join(IRIS)).unwrap().replace("hidden_d = 4 ", "");
    let (_dir, path) = scratch_job(&text);
    let msg = job::load(&path, &[]).unwrap_err().to_string();
    assert!(msg.contains("game.hidden_d") && msg.contains("required for model \"mlp\""), "{msg}");
    // The mlp keys are refused by the other models.
    for key in ["hidden_g=4", "hidden_d=4", "activation_g=\"tanh\"", "activation_d=\"tanh\"", "loss=\"vanilla\""] {
        let msg = load("jobs/quickstart.toml", &[&format!("game.{key}")]).unwrap_err();
        let name = key.split('=').next().unwrap();
        assert!(msg.contains(&format!("game.{name}")) && msg.contains("only used by model \"mlp\""), "{key}: {msg}");
    }
}
