//! The binary's memory allocator: mimalloc, two of its options, and in
//! `serve` the return of what its threads keep once each run is over.

use std::cell::Cell;
use std::ffi::c_long;

/// polars and the HTTP client allocate small buffers from several threads at
/// a high rate; glibc's malloc took a fifth of the crawl's CPU (perf, `make
/// bench` case c). mimalloc is what polars itself recommends. It keeps freed
/// pages for reuse a while ([`tune`]); in `serve`, [`tidy_after_each_run`]
/// makes the threads hand back what they kept once a run is over.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The mimalloc options [`tune`] sets, as numbered by the mimalloc
/// the lock pins (3.3: `mi_option_t` in its `mimalloc.h`; the crate names
/// only older options): set only in that version.
const MIMALLOC_VERSION: std::ops::Range<i32> = 303..304;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const MI_OPTION_PAGE_RECLAIM_ON_FREE: libmimalloc_sys::mi_option_t = 35;
/// An option, the variable that overrides it, mimalloc's default and ours.
type AllocatorOption = (libmimalloc_sys::mi_option_t, &'static str, c_long, c_long);
const ALLOCATOR_OPTIONS: [AllocatorOption; 2] = [
    (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 1000, 100),
    (
        MI_OPTION_PAGE_RECLAIM_ON_FREE,
        "MIMALLOC_PAGE_RECLAIM_ON_FREE",
        0,
        1,
    ),
];

/// Two mimalloc options, each left as it is where its variable is set in
/// the environment:
/// - memory freed goes back to the system after 100 ms instead of a
///   second (`purge_delay`). A 10M-follower run frees hundreds of MiB of
///   row groups and pages every second over some 30 threads; kept for a
///   second, they made its peak 1.0 to 1.1 GiB where ~0.85 GiB is in use
///   (`make bench` cases a and b; README "Performance"), for a few percent
///   more CPU;
/// - a thread that frees a block of a page whose thread has ended takes
///   the page over (`page_reclaim_on_free`). tokio's blocking threads end
///   after idling and new ones start with the next run, so in `serve` such
///   pages piled up: a 30-run soak grew from 129 to 474 MiB; with this
///   option 114 to 235 and 129 to 331 MiB in two soaks (120 to 231 MiB
///   with the system's malloc).
///
/// Returns whether the options were set (the pinned mimalloc is linked).
pub fn tune() -> bool {
    // SAFETY: plain calls into the linked allocator, which reads these
    // options each time it purges or frees.
    let version = unsafe { libmimalloc_sys::mi_version() };
    if !MIMALLOC_VERSION.contains(&(version / 100)) {
        return false;
    }
    for (option, env, _, value) in ALLOCATOR_OPTIONS {
        if std::env::var_os(env).is_none() {
            // SAFETY: as above; the option is the pinned version's.
            unsafe { libmimalloc_sys::mi_option_set(option, value) };
        }
    }
    true
}

/// The memory the allocator's threads keep goes back each time `finished`
/// (the runs `serve` has finished) moves on, instead of piling up from run
/// to run.
///
/// mimalloc keeps, per thread, the pages it allocated from until every block
/// of them is freed; a few blocks that outlive a run (a connection, a cached
/// regex, a table's state) pin pages that were otherwise freed. 40-run soaks
/// (`make soak`, 20k people) with ~11 MB in use between runs, counted by a
/// wrapping allocator: RSS medians of the first and last third 277 → 402 MiB
/// and still rising with mimalloc 3, 254 → 365 MiB with mimalloc 2, 184 →
/// 219 MiB with glibc's malloc; with this, see README "Guarantees".
///
/// - A tokio worker collects its heap (`mi_collect(true)`: pages left empty
///   go back, and the memory freed to the arenas is purged at once) the
///   first time it idles after a run ended: once per run, so never in the
///   middle of one. (An idle thread allocates nothing, and mimalloc purges
///   only as it allocates or frees: left alone, what the run freed stays.)
/// - A blocking thread collects as it ends (tokio ends them after 10 s idle),
///   before its pages are handed to the threads that remain.
pub fn tidy_after_each_run(runtime: &mut tokio::runtime::Builder, finished: fn() -> u64) {
    thread_local!(static TIDIED_AFTER: Cell<u64> = const { Cell::new(0) });
    runtime.on_thread_park(move || {
        let finished = finished();
        if TIDIED_AFTER.get() < finished {
            TIDIED_AFTER.set(finished);
            collect();
        }
    });
    runtime.on_thread_stop(collect);
}

fn collect() {
    // SAFETY: a plain call into the linked allocator about the calling
    // thread's own heap (and the arenas, which it locks itself).
    unsafe { libmimalloc_sys::mi_collect(true) };
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    /// The allocator's options are the process's: the tests that read or
    /// set them run one at a time.
    static OPTIONS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn rss_mib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib >> 10
    }

    /// What a worker freed stays while it idles, until a run is over; then
    /// it goes back to the system.
    #[test]
    fn a_worker_hands_back_what_it_freed_once_a_run_is_over() {
        static FINISHED: AtomicU64 = AtomicU64::new(0);
        let _options = OPTIONS.lock().unwrap_or_else(|e| e.into_inner());
        // Memory kept for a second while idle, whichever test ran first (a
        // `tune` of the other test makes it 100 ms: then it goes back before
        // the run is over, and this test could not tell why).
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(1).enable_all();
        tidy_after_each_run(&mut builder, || FINISHED.load(Ordering::Acquire));
        let runtime = builder.build().unwrap();
        let idle = || {
            // A task wakes the worker, which parks again once it is done.
            runtime.block_on(runtime.spawn(async {})).unwrap();
            std::thread::sleep(Duration::from_millis(300));
        };
        let before = rss_mib();
        // A run: 256 MiB in blocks of 16 KiB, touched, then freed.
        runtime
            .block_on(runtime.spawn(async {
                let blocks: Vec<Vec<u8>> = (0..16_384).map(|_| vec![1u8; 16 << 10]).collect();
                std::hint::black_box(&blocks);
            }))
            .unwrap();
        idle();
        let kept = rss_mib();
        assert!(
            kept >= before + 200,
            "the run's memory is kept while idle: {before} -> {kept} MiB"
        );
        FINISHED.fetch_add(1, Ordering::Release);
        idle();
        let tidied = rss_mib();
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, delay) };
        assert!(
            tidied + 200 <= kept,
            "handed back after the run: {kept} -> {tidied} MiB"
        );
    }

    /// The option numbers are the pinned mimalloc's: each reads that
    /// version's default before tuning, the value set after it.
    #[test]
    fn the_allocator_options_are_the_pinned_versions() {
        let _options = OPTIONS.lock().unwrap_or_else(|e| e.into_inner());
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        let unset = |env| std::env::var_os(env).is_none();
        for (option, env, default, _) in ALLOCATOR_OPTIONS {
            if unset(env) {
                assert_eq!(get(option), default, "{env}");
            }
        }
        let version = unsafe { libmimalloc_sys::mi_version() };
        assert!(tune(), "mimalloc {version}");
        for (option, env, _, tuned) in ALLOCATOR_OPTIONS {
            if unset(env) {
                assert_eq!(get(option), tuned, "{env}");
            }
        }
    }
}
