//! The weak-error study on jobs/lq.toml against closed-form expectations
//! (SGA mean/covariance recursions; OU mean/covariance by matrix exponential,
//! src/lq_exact.rs), plus the negative control that b1 is what buys order 2.

use std::path::PathBuf;

use gansde::cluster::Local;
use gansde::game::Lq;
use gansde::job::{self, Job, ModelSpec};
use gansde::lq_exact::{expectation, sde_moments, sga_moments};
use gansde::stats::fit_order;
use gansde::study::{weak_error, Control, Silent};

fn lq_job(overrides: &[&str]) -> Job {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("jobs/lq.toml");
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    job::load(&path, &o).expect("jobs/lq.toml is valid")
}

fn game(job: &Job) -> Lq {
    let ModelSpec::Lq { a, c, d } = &job.model else { panic!("jobs/lq.toml is an lq job") };
    Lq::new(a.clone(), c.clone(), d.clone(), job.latent.clone(), job.real.clone())
}

#[test]
fn every_weak_error_matches_the_closed_form_and_orders_agree() {
    // 2e5 chains and paths per (scheme, η): about 40 s on two cores.
    // GANSDE_TEST_SEED=k repeats the check on another seed (new data and chains).
    let seed = std::env::var("GANSDE_TEST_SEED").ok().map(|s| format!("seed={s}"));
    // The order check is a statistical test: the tool's interval holds the
    // noise-free fit with the stated probability, so with six (scheme, f)
    // fits at 95% about a quarter of seeds would fail one by chance. At 99%
    // that drops to about 6%; the default seed passes (a 3.9-SE weak error at
    // η = 0.025 for ALT θ1 pulls its fit to 1.06 ± 0.83 against 1.76).
    let mut o = vec!["estimate.paths=200000", "estimate.confidence=0.99"];
    if let Some(s) = &seed {
        o.push(s);
    }
    let job = lq_job(&o);
    let g = game(&job);
    let res = weak_error(&job, 2, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    let mut checked = 0;
    for s in &res.schemes {
        let drift = job.sde.drift_for(s.scheme);
        for (fi, (f, name)) in job.functions.iter().zip(&job.function_names).enumerate() {
            let mut exact_points = Vec::new();
            for (e, &eta) in job.etas.iter().enumerate() {
                let steps = job.record_step(e, 0);
                let sga = expectation(f, &sga_moments(&g, s.scheme, eta, job.batch, &job.init, steps), &g);
                let sde = expectation(f, &sde_moments(&g, drift, eta, job.batch, &job.init, job.record_times[0]), &g);
                let c = &s.cells[e][0][fi];
                let tag = format!("{} {name} η={eta}", s.scheme.name());
                // Each ensemble on its own: SGA within 4 SE; SDE within 4 SE plus its bias estimate.
                assert!((c.sga.mean - sga).abs() <= 4.0 * c.sga.std_error(), "{tag}: SGA {} vs exact {sga}", c.sga.mean);
                assert!(
                    (c.sde.mean - sde).abs() <= 4.0 * c.sde.std_error() + c.bias_estimate,
                    "{tag}: SDE {} vs exact {sde} (bias est {})",
                    c.sde.mean,
                    c.bias_estimate
                );
                // The weak error itself within 4 of the tool's SE.
                let exact_e = sga - sde;
                assert!((c.weak_error - exact_e).abs() <= 4.0 * c.std_error, "{tag}: e {} vs exact {exact_e} (SE {})", c.weak_error, c.std_error);
                if c.resolved {
                    exact_points.push((eta, exact_e, c.std_error));
                }
                checked += 1;
            }
            // The same fit on the exact errors (same points, same weights' SEs) lies in the tool's interval.
            let fit = s.orders[0][fi].unwrap_or_else(|| panic!("{} {name}: no order fitted", s.scheme.name()));
            let exact_fit = fit_order(&exact_points, job.confidence).unwrap();
            assert!(
                (fit.order - exact_fit.order).abs() <= fit.half_width,
                "{} {name}: order {} ± {} vs exact-error fit {}",
                s.scheme.name(),
                fit.order,
                fit.half_width,
                exact_fit.order
            );
        }
    }
    assert_eq!(checked, 2 * 3 * 4);
}

#[test]
fn alt_against_the_first_order_sde_is_only_order_one() {
    // Negative control: without b1 the ALT chains see an O(η) error.
    let job = lq_job(&["sga.schemes=[\"alt\"]", "sde.alt_drift=\"first-order\"", "estimate.paths=50000", "estimate.functions=[\"theta1\"]"]);
    let res = weak_error(&job, 2, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    let fit = res.schemes[0].orders[0][0].expect("first-order errors are large enough to resolve");
    assert!(fit.points >= 3, "{fit:?}");
    assert!(fit.order < 1.3, "ALT vs first-order SDE gave order {fit:?}");
    assert_eq!(res.schemes[0].paper_order, 1.0);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let job = lq_job(&["estimate.paths=3000", "estimate.block=700", "sga.eta=[0.2, 0.1]", "estimate.functions=[\"theta1\", \"norm2\", \"loss\"]"]);
    let a = weak_error(&job, 1, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    let b = weak_error(&job, 2, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    let c = weak_error(&job, 5, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    for ((x, y), z) in a.schemes.iter().zip(&b.schemes).zip(&c.schemes) {
        assert_eq!(x.cells, y.cells);
        assert_eq!(x.cells, z.cells);
        assert_eq!(x.orders, y.orders);
    }
}

#[test]
fn the_exact_ou_integrator_agrees_with_the_closed_form() {
    let job = lq_job(&["sde.integrator=\"exact\"", "estimate.paths=20000", "sga.eta=[0.2]"]);
    let g = game(&job);
    let res = weak_error(&job, 2, &Local, &Control::unattended(), &Silent).unwrap().expect("rank 0 has the result");
    for s in &res.schemes {
        for (fi, f) in job.functions.iter().enumerate() {
            let sde = expectation(f, &sde_moments(&g, job.sde.drift_for(s.scheme), 0.2, job.batch, &job.init, 2.0), &g);
            let c = &s.cells[0][0][fi];
            assert_eq!(c.bias_estimate, 0.0);
            assert!((c.sde.mean - sde).abs() <= 4.0 * c.sde.std_error(), "{} f{fi}: {} vs {sde}", s.scheme.name(), c.sde.mean);
        }
    }
}
