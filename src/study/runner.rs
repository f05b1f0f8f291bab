//! Running one round of blocks on this rank's threads, saving completed
//! blocks, and reducing the round along the fixed tree to rank 0.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::cluster::{self, Comm};
use crate::io::StateStore;

use super::block::{BlockResult, Item, Plan};
use super::{Control, Observer, StudyError};

/// A failure with the item it happened on (usize::MAX when not tied to one).
pub(super) type Failure = Option<(usize, StudyError)>;

/// Saves every block this rank knows complete: loaded from state or computed.
pub(super) fn save_state<'r>(
    store: &StateStore,
    rank: usize,
    computed: impl Iterator<Item = (u64, &'r BlockResult)>,
    saved: &'r HashMap<u64, BlockResult>,
) -> Result<usize, StudyError> {
    let mut map = BTreeMap::new();
    for (key, r) in saved.iter().map(|(k, r)| (*k, r)).chain(computed) {
        let mut b = Vec::new();
        r.encode(0, 0, 0, &mut b);
        map.insert(key, b);
    }
    let n = map.len();
    store.save(rank, &map).map_err(|e| StudyError::Save { dir: store.dir().display().to_string(), reason: e.to_string() })?;
    Ok(n)
}

/// Runs `items[range]` not already in `saved` on `threads` threads (results
/// indexed from range.start). Saves state every `control.interval` and when
/// `control.stop` is raised.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_items(
    plan: &Plan,
    items: &[Item],
    range: Range<usize>,
    threads: usize,
    saved: &HashMap<u64, BlockResult>,
    rank: usize,
    control: &Control,
    observer: &dyn Observer,
    save_time: &mut Duration,
    comm: &dyn Comm,
    round_total: u64,
) -> (Vec<Option<BlockResult>>, Failure) {
    let slots: Vec<OnceLock<BlockResult>> = range.clone().map(|_| OnceLock::new()).collect();
    for idx in range.clone() {
        if let Some(r) = saved.get(&items[idx].key()) {
            let _ = slots[idx - range.start].set(r.clone());
        }
    }
    let mut order: Vec<usize> = (0..slots.len()).filter(|&k| slots[k].get().is_none()).collect();
    // Costliest blocks first keeps threads busy to the end; the order never affects results.
    order.sort_by_key(|&k| std::cmp::Reverse(items[range.start + k].cost));
    let computed = |slots: &[OnceLock<BlockResult>]| -> Vec<(u64, BlockResult)> {
        slots.iter().enumerate().filter_map(|(k, s)| s.get().map(|r| (items[range.start + k].key(), r.clone()))).collect()
    };
    let mut last_save = Instant::now();
    let mut save_error = None;
    let run = Coordinated { threads, control, observer, comm, round_total };
    let (slots, mut failure) =
        run.run(slots, &order, &|| plan.work(), &|k, (sga, sde), done, stop| plan.run(&items[range.start + k], sga, sde, done, stop), &mut |slots| {
            if let Some(store) = control.state {
                if last_save.elapsed() >= control.interval {
                    let t = Instant::now();
                    let c = computed(slots);
                    if let Err(e) = save_state(store, rank, c.iter().map(|(k, r)| (*k, r)), saved) {
                        save_error.get_or_insert(e);
                    }
                    *save_time += t.elapsed();
                    last_save = Instant::now();
                }
            }
        });
    // Failures are named by item index across ranks, so the lowest one is reported.
    failure = failure.map(|(k, e)| (if k == usize::MAX { k } else { range.start + k }, e));
    let complete = slots.iter().all(|s| s.get().is_some());
    if failure.is_none() && !complete && control.stop.load(Ordering::Relaxed) {
        let stopped = match control.state {
            Some(store) => {
                let c = computed(&slots);
                match save_state(store, rank, c.iter().map(|(k, r)| (*k, r)), saved) {
                    Ok(n) => StudyError::Stopped { saved: n, dir: store.dir().display().to_string() },
                    Err(e) => e,
                }
            }
            None => StudyError::Stopped { saved: 0, dir: "(nowhere: no state folder)".into() },
        };
        failure = Some((usize::MAX, stopped));
    }
    if failure.is_none() {
        if let Some(e) = save_error {
            failure = Some((usize::MAX, e));
        }
    }
    (slots.into_iter().map(|s| s.into_inner()).collect(), failure)
}

/// One round of work items on this rank's threads, steered with the other
/// ranks: rank 0 shows everyone's progress, and a failure or a signal on any
/// rank stops every rank promptly (rank 0 sends each other rank exactly one
/// end-of-round word).
pub(crate) struct Coordinated<'a> {
    pub threads: usize,
    pub control: &'a Control<'a>,
    pub observer: &'a dyn Observer,
    pub comm: &'a dyn Comm,
    /// Work units of the round over all ranks (for the progress display).
    pub round_total: u64,
}

impl Coordinated<'_> {
    /// Computes the slots listed in `order` with `compute(slot, work, done,
    /// stop)` (work from `make_work`, one per thread; `done` counts work
    /// units; Ok(None) means stopped), calling `tick` about every 100 ms on
    /// the coordinating thread. Returns the slots and the failure of the
    /// lowest failing slot, or `StudyError::Elsewhere` when another rank
    /// stopped this one.
    #[allow(clippy::type_complexity)]
    pub(crate) fn run<R: Send + Sync, W>(
        &self,
        slots: Vec<OnceLock<R>>,
        order: &[usize],
        make_work: &(dyn Fn() -> W + Sync),
        compute: &(dyn Fn(usize, &mut W, &AtomicU64, &AtomicBool) -> Result<Option<R>, StudyError> + Sync),
        tick: &mut dyn FnMut(&[OnceLock<R>]),
    ) -> (Vec<OnceLock<R>>, Failure) {
        let (control, observer, comm, round_total) = (self.control, self.observer, self.comm, self.round_total);
        let next = AtomicUsize::new(0);
        let done = AtomicU64::new(0);
        let stop = AtomicBool::new(false);
        let failure: Mutex<Failure> = Mutex::new(None);
        let mut last_report = Instant::now();
        // Rank 0 shows the work of all ranks: its own plus the others' reports.
        let root = comm.rank() == 0;
        let mut others = vec![(0u64, false); comm.size()];
        others[0].1 = true;
        let (mut any_failed, mut worded) = (false, vec![false; comm.size()]);
        let (mut got_word, mut stopped_by_root) = (false, false);
        std::thread::scope(|scope| {
            for _ in 0..self.threads.max(1) {
                scope.spawn(|| {
                    let mut work = make_work();
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= order.len() || stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let idx = order[k];
                        match compute(idx, &mut work, &done, &stop) {
                            Ok(Some(r)) => {
                                let _ = slots[idx].set(r);
                            }
                            Ok(None) => break,
                            Err(e) => {
                                stop.store(true, Ordering::Relaxed);
                                let mut f = failure.lock().unwrap();
                                // The failure of the lowest item, so the message does not depend on timing.
                                if f.as_ref().is_none_or(|(i, _)| idx < *i) {
                                    *f = Some((idx, e));
                                }
                            }
                        }
                    }
                });
            }
            loop {
                if control.stop.load(Ordering::Relaxed) {
                    stop.store(true, Ordering::Relaxed);
                }
                let mine_done = slots.iter().all(|s| s.get().is_some()) || stop.load(Ordering::Relaxed);
                // A signal to any one rank stops all of them, like a failure.
                let failed = failure.lock().unwrap().is_some() || control.stop.load(Ordering::Relaxed);
                let now = done.load(Ordering::Relaxed);
                if root {
                    for (r, d, last, f) in comm.collect_progress() {
                        others[r] = (d, last);
                        any_failed |= f;
                    }
                    any_failed |= failed;
                    if any_failed {
                        // A failure anywhere stops every rank now, not when its share is done.
                        stop.store(true, Ordering::Relaxed);
                        for (r, w) in worded.iter_mut().enumerate().skip(1) {
                            if !*w {
                                comm.send_round_word(r, true);
                                *w = true;
                            }
                        }
                    }
                    let all: u64 = now + others[1..].iter().map(|o| o.0).sum::<u64>();
                    observer.progress(all.min(round_total), round_total.max(1));
                    // Every other rank's last report must be in before the round's collectives.
                    if mine_done && others.iter().all(|o| o.1) {
                        for (r, w) in worded.iter_mut().enumerate().skip(1) {
                            if !*w {
                                comm.send_round_word(r, false);
                                *w = true;
                            }
                        }
                        break;
                    }
                } else {
                    if !got_word {
                        if let Some(stop_now) = comm.round_word(false) {
                            got_word = true;
                            if stop_now {
                                stop.store(true, Ordering::Relaxed);
                                stopped_by_root = true;
                            }
                        }
                    }
                    if mine_done {
                        comm.report_progress(now, true, failed);
                        if !got_word {
                            comm.round_word(true);
                        }
                        break;
                    }
                    if failed || last_report.elapsed() >= Duration::from_secs(1) {
                        comm.report_progress(now, false, failed);
                        last_report = Instant::now();
                    }
                }
                tick(&slots);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut failure = failure.into_inner().unwrap();
        let complete = slots.iter().all(|s| s.get().is_some());
        if failure.is_none() && !complete && stopped_by_root && !control.stop.load(Ordering::Relaxed) {
            // Another rank failed or was stopped; rank 0 reports it (and the
            // study saves this rank's blocks if the stop was a signal).
            failure = Some((usize::MAX, StudyError::Elsewhere { code: 0 }));
        }
        (slots, failure)
    }
}

/// Every rank sends the maximal tree nodes of its blocks in each group; rank
/// 0 finishes each group's tree over the round's blocks (`blocks[g]`) and
/// returns the per-group totals (None on other ranks, and for empty groups).
pub(super) fn reduce_round(
    plan: &Plan,
    items: &[Item],
    mine: Range<usize>,
    results: &[BlockResult],
    blocks: &[Range<usize>],
    comm: &dyn Comm,
) -> Option<Vec<Option<BlockResult>>> {
    let merge = |a: &BlockResult, b: &BlockResult| a.merge(b);
    let mut bytes = Vec::new();
    let mut g0 = mine.start;
    while g0 < mine.end {
        let group = items[g0].group;
        let mut g1 = g0;
        while g1 < mine.end && items[g1].group == group {
            g1 += 1;
        }
        // Tree positions are relative to the round's first block of the group.
        let base = blocks[group].start;
        let owned = items[g0].block - base..items[g1 - 1].block + 1 - base;
        for node in cluster::plan::owned_nodes(blocks[group].len(), owned.clone()) {
            let at = g0 - mine.start + node.start - owned.start;
            cluster::plan::tree_fold(&results[at..at + node.len()], &merge).encode(group, node.start, node.end, &mut bytes);
        }
        g0 = g1;
    }
    let all = comm.gather(&bytes)?;
    let mut known: Vec<HashMap<(usize, usize), BlockResult>> = vec![HashMap::new(); plan.ngroups()];
    for part in &all {
        for (group, lo, hi, r) in BlockResult::decode_all(part, plan.ncells) {
            known[group].insert((lo, hi), r);
        }
    }
    Some(
        (0..plan.ngroups())
            .map(|g| (!blocks[g].is_empty()).then(|| cluster::plan::eval_tree(blocks[g].len(), &known[g], &merge).expect("every block reached rank 0")))
            .collect(),
    )
}
