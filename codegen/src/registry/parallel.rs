//! A tiny work-sharing map over a slice: a few threads pull items one at a
//! time, so a thread that the OS descheduled (the machine is shared) does
//! not hold back a fixed share of the work.
use std::sync::atomic::{AtomicUsize, Ordering};

/// Maps `f` over `items` on up to `available_parallelism` (max 8) threads,
/// each with its own state from `init`. Results come back in item order;
/// an item whose thread panicked is `None`.
pub(crate) fn map<T, S, R, I, F>(items: &[T], init: I, f: F) -> Vec<Option<R>>
where
    T: Sync,
    R: Send,
    I: Fn() -> S + Sync,
    F: Fn(&mut S, &T) -> R + Sync,
{
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(items.len());
    let mut out: Vec<Option<R>> = Vec::with_capacity(items.len());
    out.resize_with(items.len(), || None);
    if threads == 0 {
        return out;
    }
    let next = AtomicUsize::new(0);
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut state = init();
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(&mut state, item)));
                    }
                    done
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (i, r) in parts.into_iter().flatten() {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_survives_panics() {
        let items: Vec<u32> = (0..100).collect();
        let out = super::map(
            &items,
            || 0u32,
            |n, x| {
                *n += 1;
                x * 2
            },
        );
        assert_eq!(out.len(), 100);
        assert!(out
            .iter()
            .enumerate()
            .all(|(i, r)| *r == Some(i as u32 * 2)));
        let out = super::map(
            &items,
            || (),
            |_, x| {
                assert!(*x != 50, "boom");
                *x
            },
        );
        assert!(out.iter().any(Option::is_none));
    }
}
