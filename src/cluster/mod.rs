//! Ranks: the [`Comm`] trait (rank, size, a gather to rank 0 and a maximum),
//! a single-process backend and, with the `mpi` feature, an MPI backend over
//! the system MPI. The work plan and the fixed reduction tree live in
//! [`plan`]; nothing here touches random streams, so results never depend on
//! the layout.

pub mod plan;

#[cfg(feature = "mpi")]
mod mpi_comm;

/// What the study needs from a set of cooperating processes.
pub trait Comm {
    /// This process's rank, 0-based.
    fn rank(&self) -> usize;
    /// The number of ranks.
    fn size(&self) -> usize;
    /// Collects every rank's bytes at rank 0, in rank order; None on other ranks.
    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>>;
    /// The maximum of `v` over all ranks, known to every rank.
    fn max(&self, v: u64) -> u64;
    /// Other ranks: tell rank 0 how much of this round's work is done;
    /// `last` marks a rank's final report of the round, `failed` a failure.
    /// Returns at once.
    fn report_progress(&self, _done: u64, _last: bool, _failed: bool) {}
    /// Rank 0: the reports received since the last call, as
    /// (rank, done, last, failed).
    fn collect_progress(&self) -> Vec<(usize, u64, bool, bool)> {
        Vec::new()
    }
    /// Rank 0: the one end-of-round word to `rank` (`stop`: abandon the
    /// round's remaining work). Every other rank gets exactly one per round.
    fn send_round_word(&self, _rank: usize, _stop: bool) {}
    /// Other ranks: rank 0's word for this round, if it has arrived
    /// (`wait`: block until it does).
    fn round_word(&self, _wait: bool) -> Option<bool> {
        None
    }
}

/// One process: rank 0 of 1.
pub struct Local;

impl Comm for Local {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        Some(vec![bytes.to_vec()])
    }
    fn max(&self, v: u64) -> u64 {
        v
    }
}

/// Environment variables set by MPI launchers (OpenMPI's mpirun, PMI/PMIx as
/// used by srun and MPICH's hydra).
const LAUNCHER_VARS: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"];

/// Whether this process was started by an MPI launcher.
pub fn under_launcher() -> bool {
    LAUNCHER_VARS.iter().any(|v| std::env::var_os(v).is_some())
}

/// The communicator for this process: MPI when started by a launcher and
/// built with the `mpi` feature, else a single rank.
pub fn start() -> Result<Box<dyn Comm>, String> {
    #[cfg(feature = "mpi")]
    if under_launcher() {
        return mpi_comm::MpiComm::new().map(|c| Box::new(c) as Box<dyn Comm>);
    }
    #[cfg(not(feature = "mpi"))]
    if under_launcher() && std::env::var("OMPI_COMM_WORLD_SIZE").map_or(false, |s| s != "1") {
        return Err(
            "this gansde was built without the `mpi` feature but was started by an MPI launcher with several ranks; rebuild with default features".into()
        );
    }
    Ok(Box::new(Local))
}
