//! What the integration tests share.

/// HDF5 opens files without close-on-exec and locks them with flock, so a
/// child started while another test thread has a fixture or results file
/// open inherits that lock and holds it while it runs; a third process
/// opening that file then fails with "unable to lock file". The children
/// here do not use HDF5's locking (gansde has its own output lock).
#[allow(dead_code)]
pub const NO_HDF5_LOCKING: (&str, &str) = ("HDF5_USE_FILE_LOCKING", "FALSE");

/// The test process itself opens its HDF5 files without locking too: a child
/// spawned by another test thread inherits the descriptors (and flocks) of
/// files this process has open, and a later open here would then fail. Set
/// before `main`, while the process has one thread, and before HDF5 starts.
#[ctor::ctor(unsafe)]
fn hdf5_without_file_locking() {
    std::env::set_var(NO_HDF5_LOCKING.0, NO_HDF5_LOCKING.1);
}
