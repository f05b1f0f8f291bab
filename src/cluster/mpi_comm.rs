//! The MPI backend (rsmpi). MPI is called only from the main thread of each
//! rank (workers are plain threads), so `Funneled` threading suffices.

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Count;

use super::Comm;

/// Tag of progress reports (point-to-point, separate from collectives).
const PROGRESS_TAG: i32 = 77;
/// Tag of rank 0's end-of-round word (stop or carry on).
const WORD_TAG: i32 = 78;

/// MPI_COMM_WORLD; finalises MPI when dropped.
pub struct MpiComm {
    _universe: Universe,
    world: SimpleCommunicator,
}

impl MpiComm {
    /// Initialises MPI.
    pub fn new() -> Result<Self, String> {
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled).ok_or("MPI was already initialised")?;
        let world = universe.world();
        Ok(MpiComm { _universe: universe, world })
    }
}

impl Comm for MpiComm {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn gather(&self, bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
        // Never pass an empty buffer: its dangling pointer (0x1) is OpenMPI's
        // MPI_IN_PLACE, which a non-root Gatherv rejects. One leading byte,
        // stripped below, keeps every contribution non-empty.
        let mut padded = Vec::with_capacity(bytes.len() + 1);
        padded.push(0u8);
        padded.extend_from_slice(bytes);
        let bytes = &padded[..];
        let root = self.world.process_at_rank(0);
        let n = bytes.len() as Count;
        if self.rank() == 0 {
            let mut counts = vec![0 as Count; self.size()];
            root.gather_into_root(&n, &mut counts[..]);
            let displs: Vec<Count> = counts
                .iter()
                .scan(0, |acc, &c| {
                    let d = *acc;
                    *acc += c;
                    Some(d)
                })
                .collect();
            let total: usize = counts.iter().map(|&c| c as usize).sum();
            let mut buf = vec![0u8; total];
            {
                let mut part = PartitionMut::new(&mut buf[..], &counts[..], &displs[..]);
                root.gather_varcount_into_root(bytes, &mut part);
            }
            Some(counts.iter().zip(&displs).map(|(&c, &d)| buf[d as usize + 1..(d + c) as usize].to_vec()).collect())
        } else {
            root.gather_into(&n);
            root.gather_varcount_into(bytes);
            None
        }
    }

    fn report_progress(&self, done: u64, last: bool, failed: bool) {
        // A few bytes go eagerly: the send completes locally, never waiting for rank 0.
        self.world.process_at_rank(0).send_with_tag(&[done, last as u64, failed as u64][..], PROGRESS_TAG);
    }

    fn collect_progress(&self) -> Vec<(usize, u64, bool, bool)> {
        let mut out = Vec::new();
        while let Some(status) = self.world.any_process().immediate_probe_with_tag(PROGRESS_TAG) {
            let (v, _) = self.world.process_at_rank(status.source_rank()).receive_vec_with_tag::<u64>(PROGRESS_TAG);
            out.push((status.source_rank() as usize, v[0], v[1] == 1, v[2] == 1));
        }
        out
    }

    fn send_round_word(&self, rank: usize, stop: bool) {
        self.world.process_at_rank(rank as i32).send_with_tag(&(stop as u64), WORD_TAG);
    }

    fn round_word(&self, wait: bool) -> Option<bool> {
        let root = self.world.process_at_rank(0);
        if !wait && root.immediate_probe_with_tag(WORD_TAG).is_none() {
            return None;
        }
        let (v, _) = root.receive_with_tag::<u64>(WORD_TAG);
        Some(v == 1)
    }

    fn max(&self, v: u64) -> u64 {
        let mut out = 0u64;
        self.world.all_reduce_into(&v, &mut out, SystemOperation::max());
        out
    }
}
