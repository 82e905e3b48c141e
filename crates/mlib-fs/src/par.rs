//! Spreading file system work over the cores.
//!
//! Most of what mlib does to many files at once is system calls that spend their time in
//! the kernel (stat, mkdir, rename, symlink), and the kernel runs them side by side on
//! different cores: a bare loop making a first apply's folders, files and links on two
//! threads took 0.6-0.8x the time of one on ext4 (`fs-floor SRC OUT pipelined`, see
//! docs/PERFORMANCE.md). Below a few hundred items a thread costs more than it saves, so
//! small batches stay on the calling thread.

use std::sync::{Mutex, PoisonError};

/// Items below this stay on the calling thread.
const MIN_PARALLEL: usize = 512;

/// How many items a thread of [`parallel_update`] takes at a time: small enough that the
/// threads end together, large enough that taking a block costs nothing next to its work.
const BLOCK: usize = 256;

/// How many threads: one per core, at most 8 (beyond that the kernel's locks, not the
/// cores, set the pace).
fn threads_for(items: usize) -> usize {
    if items < MIN_PARALLEL {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
}

/// `f` over `items` on every core; the results in the items' order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads < 2 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let (first, rest) = items.split_at(chunk.min(items.len()));
    std::thread::scope(|scope| {
        let handles: Vec<_> = rest
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        // The first part on this thread: one thread fewer to start, and what it allocates
        // stays in this thread's heap (each new thread's allocator heap holds pages of its own).
        let mut all = Vec::with_capacity(items.len());
        all.extend(first.iter().map(&f));
        for handle in handles {
            all.extend(handle.join().expect("worker thread panicked"));
        }
        all
    })
}

/// `f` on every item, in place, on every core. Each thread takes the next block of
/// [`BLOCK`] items when it is done with its last, so work of uneven cost (a link's `lstat`
/// looks up one name, a store file's `stat` four) ends on every thread at about the same
/// time; and what `f` finds stays in the item (a plan's 30,000 stats, collected and then
/// copied back, were 4 MB of fresh memory).
pub fn parallel_update<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    let threads = threads_for(items.len());
    if threads < 2 {
        items.iter_mut().for_each(f);
        return;
    }
    let blocks = Mutex::new(items.chunks_mut(BLOCK));
    let work = || {
        loop {
            // A worker that panicked took nothing with it: the blocks left are still good.
            let next = blocks.lock().unwrap_or_else(PoisonError::into_inner).next();
            let Some(block) = next else {
                return;
            };
            block.iter_mut().for_each(&f);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
}

/// [`parallel_map`] for work that takes each item by value.
pub fn parallel_map_owned<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = threads_for(items.len());
    if threads < 2 {
        return items.into_iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    // Cut from the end, at the same boundaries `chunks(chunk)` would use.
    let (mut first, mut parts) = (items, Vec::with_capacity(threads));
    while first.len() > chunk {
        let at = (first.len() - 1) / chunk * chunk;
        parts.push(first.split_off(at));
    }
    parts.reverse();
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(|| part.into_iter().map(&f).collect::<Vec<R>>()))
            .collect();
        let mut all = Vec::with_capacity(first.len() * threads);
        all.extend(first.into_iter().map(&f));
        for handle in handles {
            all.extend(handle.join().expect("worker thread panicked"));
        }
        all
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_updated_once_below_and_above_the_threshold() {
        for n in [0, 1, MIN_PARALLEL - 1, MIN_PARALLEL, BLOCK * 7 + 3, 4099] {
            let mut items: Vec<(usize, usize)> = (0..n).map(|i| (i, 0)).collect();
            parallel_update(&mut items, |(i, hits)| *hits += *i * 3 + 1);
            let want: Vec<(usize, usize)> = (0..n).map(|i| (i, i * 3 + 1)).collect();
            assert_eq!(items, want, "{n} items");
        }
    }

    #[test]
    fn results_keep_the_items_order_below_and_above_the_threshold() {
        for n in [0, 1, MIN_PARALLEL - 1, MIN_PARALLEL, 1000, 1001, 4099] {
            let items: Vec<usize> = (0..n).collect();
            let want: Vec<usize> = items.iter().map(|i| i * 3).collect();
            assert_eq!(parallel_map(&items, |i| i * 3), want, "{n} borrowed");
            assert_eq!(
                parallel_map_owned(items.clone(), |i| i * 3),
                want,
                "{n} owned"
            );
        }
    }

    #[test]
    fn each_owned_item_is_taken_exactly_once() {
        let items: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
        let back = parallel_map_owned(items.clone(), |s| s);
        assert_eq!(back, items);
    }
}
