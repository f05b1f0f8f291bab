//! Hot loops allocate nothing (DESIGN §3): a counting global allocator
//! watches whole SGA chains and SDE paths of both games, scheduled SML steps
//! and the long run's per-sample FDR terms after their work space has been sized.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use gansde::job::{self, Drift, Integrator, Noise, Scheme, TraceMethod};
use gansde::rng::{stream, Role};
use gansde::sde::{NoiseFactor, SdeSetup, SdeWork};
use gansde::sga::{run_chain, sml_step_scheduled, Remark4, ScheduleState, SgaWork};
use gansde::study::observables::{ObsSetup, ObsWork};

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    let out = f();
    (out, ALLOCATIONS.load(Ordering::SeqCst) - before)
}

#[test]
fn chains_and_paths_allocate_nothing() {
    // The counter sees allocations (so a zero below means something).
    let (_, n) = count(|| std::hint::black_box(vec![1u8; 10]));
    assert!(n >= 1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    for file in ["jobs/lq.toml", "jobs/quickstart.toml", "jobs/weak-error-iris-mlp.toml"] {
        let job = job::load(&root.join(file), &[]).unwrap();
        let game = job.game();
        let g = game.as_ref();
        let rec = [3usize, 5];
        let mut sga = SgaWork::new(g);
        let mut sink = 0.0;
        let never = std::sync::atomic::AtomicBool::new(false);
        for scheme in [Scheme::Alt, Scheme::Sml] {
            let mut rng = stream(1, 0, Role::Sga(0), 0);
            let (r, n) = count(|| run_chain(g, scheme, 0.1, job.batch, &job.init, 5, &rec, 1e6, &mut rng, &mut sga, &never, |_, u| sink += u[0]));
            assert!(r.unwrap(), "the chain ran to the end");
            assert_eq!(n, 0, "{file}: SGA {scheme:?} allocated {n} times");
        }
        for drift in [Drift::FirstOrder, Drift::SecondOrder, Drift::Modified] {
            for noise in [Noise::Block, Noise::Full] {
                for integrator in [Integrator::Richardson, Integrator::Euler] {
                    let setup = SdeSetup::new(g, drift, noise, integrator, 0.1, job.batch, 2, &job.init);
                    let mut w = SdeWork::new(g, setup.noise.ncols(g), setup.levels());
                    let mut rng = stream(1, 0, Role::Sde(0), 0);
                    let (r, n) = count(|| setup.run_path(g, &job.init, 5, &rec, 1e6, &mut rng, &mut w, &never, |_, _, u| sink += u[0]));
                    assert!(r.unwrap(), "the path ran to the end");
                    assert_eq!(n, 0, "{file}: SDE {drift:?} {noise:?} {integrator:?} allocated {n} times");
                }
            }
        }
        // Long run: the Remark 4 scheduled SML step and the per-sample FDR terms (both trace methods).
        let rule = Remark4::new(0.5, 0.1, 5, 4).unwrap();
        let mut state = ScheduleState::new(&rule);
        let mut rng = stream(1, 0, Role::Sga(8), 0);
        sga.u.copy_from_slice(&job.init);
        let mut eta = 0.1;
        let (_, n) = count(|| {
            for _ in 0..20 {
                sml_step_scheduled(g, &mut eta, 4, &mut rng, &mut sga, &rule, &mut state);
            }
        });
        assert_eq!(n, 0, "{file}: scheduled SML allocated {n} times");
        let factor = NoiseFactor::new(g, Noise::Block, &job.init);
        let mut ow = ObsWork::new(g, &factor);
        let mut out = [0.0; 6];
        for trace in [TraceMethod::Exact, TraceMethod::Hutchinson(2)] {
            let obs = ObsSetup { game: g, drift: Drift::SecondOrder, eta: 0.1, noise: Noise::Block, factor: &factor, trace };
            let (_, n) = count(|| obs.observe(&job.init, &mut rng, &mut ow, &mut out));
            assert_eq!(n, 0, "{file}: FDR terms ({trace:?}) allocated {n} times");
            sink += out[0];
        }
        assert!(sink.is_finite());
    }
}
