//! Prints the closed-form E f (SGA and SDE) and weak errors for an `lq` job.
//! Usage: cargo run --release --example lq_exact_values -- jobs/lq.toml
use gansde::game::Lq;
use gansde::job::{self, ModelSpec};
use gansde::lq_exact::{expectation, sde_moments, sga_moments};

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| "jobs/lq.toml".into());
    let job = job::load(path.as_ref(), &[]).expect("job");
    let ModelSpec::Lq { a, c, d } = &job.model else { panic!("not an lq job") };
    let game = Lq::new(a.clone(), c.clone(), d.clone(), job.latent.clone(), job.real.clone());
    for &s in &job.schemes {
        for (e, &eta) in job.etas.iter().enumerate() {
            for (r, &t) in job.record_times.iter().enumerate() {
                let sga = sga_moments(&game, s, eta, job.batch, &job.init, job.record_step(e, r));
                let sde = sde_moments(&game, job.sde.drift_for(s), eta, job.batch, &job.init, t);
                for (f, name) in job.functions.iter().zip(&job.function_names) {
                    let (x, y) = (expectation(f, &sga, &game), expectation(f, &sde, &game));
                    println!("{} eta {eta} t {t} {name:>14}: SGA {x:.6} SDE {y:.6} e {:.4e}", s.name(), x - y);
                }
            }
        }
    }
}
