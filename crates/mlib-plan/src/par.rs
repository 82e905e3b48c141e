//! Spreading the stat-bound parts of planning over the cores.

/// `f` over `items` on every core (in order), for the stat-bound parts of planning.
pub(crate) fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || items.len() < 512 {
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
            all.extend(handle.join().expect("planning thread panicked"));
        }
        all
    })
}
