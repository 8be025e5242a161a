//! Progress of one account's extraction, reported as it happens so that a
//! terminal can show per-account bars (pages listed, people profiled, ETA)
//! without the extractor knowing how it is displayed.

/// What an extractor reports while it runs. Every method has a no-op default,
/// so a caller implements only what it shows.
pub trait ExtractProgress: Send + Sync {
    /// One page of the member list arrived: `listed` members so far, out of
    /// `total` (the account's own count at the time of that page; it moves
    /// while paging).
    fn page_listed(&self, _total: u64, _listed: u64) {}
    /// `profiled` more members got their profile (and UnionID).
    fn profiled(&self, _profiled: u64) {}
}

/// Reports nothing: for runs without a terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ExtractProgress for NoProgress {}
