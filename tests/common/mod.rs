//! What the integration tests share.

/// HDF5 opens files without close-on-exec and locks them with flock, so a
/// child started while another test thread has a fixture or results file
/// open inherits that lock and holds it while it runs; a third process
/// opening that file then fails with "unable to lock file". The children
/// here do not use HDF5's locking (gansde has its own output lock).
pub const NO_HDF5_LOCKING: (&str, &str) = ("HDF5_USE_FILE_LOCKING", "FALSE");
