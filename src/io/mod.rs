//! Results files (DESIGN §4): one HDF5 file per study, written under a
//! temporary name and renamed when complete, so a crash never leaves a
//! half-written result under the real name.

pub mod results;
pub mod samples;
pub mod state;

pub use results::{write_weak_error, RunInfo};
pub use samples::{write_long_run, SampleStore};
pub use state::{StateError, StateStore};
