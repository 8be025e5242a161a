//! Identity rows spilled to local disk, hash-partitioned into buckets, so the
//! dedupe and the diff against the previous snapshot run a bucket group at a
//! time: memory is bounded by a group, not by the number of followers (the
//! out-of-core hash partitioning databases use for aggregates larger than
//! memory).
//!
//! Every row goes to the bucket of a hash of its key: the person
//! ([`SpillKey::Person`]: the UnionID, or `account_id/member_id` when it is
//! unknown — see [`crate::transform::person_id`]) or the membership
//! ([`SpillKey::Member`]: `account_id/member_id`). The hash is fixed, so two
//! spills of the same key put equal keys in equal buckets: a person's rows
//! from every account, today's and the previous snapshot's, meet in one
//! bucket. Buckets are read back in groups of consecutive buckets of at most
//! a given number of rows; a small snapshot is a single group.
//!
//! Each flush of rows is one uncompressed Parquet file, sorted by bucket
//! with a row group per bucket, so a bucket is read back without the
//! others; or, when the caller can afford it ([`Spill::keep`]), it stays in
//! memory as it came, and its rows' buckets are worked out only if a read
//! asks for part of them. Only rows on disk count towards a group
//! ([`groups`]): rows held in memory cost no more memory when read, so a
//! snapshot whose rows all stayed in memory is one group, derived without
//! touching the disk. The files are under the system temp folder (`TMPDIR`), private
//! to the user (see [`super::scratch`]), removed when the spill is dropped;
//! what a killed process leaves is removed by the next run's start.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polars::prelude::*;

use super::LoadError;

/// Buckets of every spill. Enough that a group of buckets stays small at
/// 100M rows (1.5M rows a bucket), few enough that a small snapshot's files
/// stay few.
pub const BUCKETS: usize = 64;
/// Rows buffered before they are partitioned and written.
const PENDING_ROWS: usize = 256 * 1024;

/// What rows are bucketed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpillKey {
    /// The person: UnionID, or `account_id/member_id` when unresolved.
    Person,
    /// The membership: `account_id/member_id`.
    Member,
}

/// Rows of the `identities` shape, partitioned into [`BUCKETS`] buckets on
/// local disk.
#[derive(Debug)]
pub struct Spill {
    key: SpillKey,
    dir: PathBuf,
    /// One file per flush, its rows sorted by bucket, a row group per bucket.
    files: Vec<PathBuf>,
    /// Per bucket: (file, first row, rows) of each of its row groups.
    parts: Vec<Vec<(usize, usize, usize)>>,
    /// Flushes kept in memory, unsorted.
    resident: Vec<Resident>,
    /// Rows on disk per bucket.
    rows: Vec<u64>,
    pending: Vec<DataFrame>,
    pending_rows: usize,
}

impl Spill {
    /// An empty spill in a new folder under the system temp folder.
    pub fn new(key: SpillKey) -> Result<Spill, LoadError> {
        let dir = super::scratch::path("spill", "");
        super::scratch::create_private_dir(&dir).map_err(|source| spill_error(&dir, source))?;
        Ok(Spill {
            key,
            dir,
            files: Vec::new(),
            parts: vec![Vec::new(); BUCKETS],
            resident: Vec::new(),
            rows: vec![0; BUCKETS],
            pending: Vec::new(),
            pending_rows: 0,
        })
    }

    pub fn key(&self) -> SpillKey {
        self.key
    }

    /// Whether any of the rows went to disk.
    pub fn on_disk(&self) -> bool {
        !self.files.is_empty()
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        let resident: usize = self.resident.iter().map(|r| r.rows.height()).sum();
        self.rows.iter().sum::<u64>() + (self.pending_rows + resident) as u64
    }

    /// Rows pushed and not yet flushed or kept.
    pub fn pending_rows(&self) -> usize {
        self.pending_rows
    }

    /// Keeps the buffered rows in memory instead of writing them: the
    /// caller has counted them against what it may hold (a spill does not
    /// know what else is in memory).
    pub fn keep(&mut self) -> Result<(), LoadError> {
        if let Some(rows) = self.take_pending().map_err(encode_error)? {
            self.resident.push(Resident {
                rows,
                buckets: OnceLock::new(),
            });
        }
        Ok(())
    }

    /// The buffered rows as one frame (none when nothing is buffered); the
    /// buffer is then empty.
    fn take_pending(&mut self) -> PolarsResult<Option<DataFrame>> {
        self.pending_rows = 0;
        super::stack(std::mem::take(&mut self.pending))
    }

    /// Adds rows (columns `account_id`, `member_id`, `unionid` at least).
    pub fn push(&mut self, rows: DataFrame) -> Result<(), LoadError> {
        if rows.height() == 0 {
            return Ok(());
        }
        self.pending_rows += rows.height();
        self.pending.push(rows);
        if self.pending_rows >= PENDING_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows to a file of their own, sorted by bucket.
    pub fn flush(&mut self) -> Result<(), LoadError> {
        let Some(rows) = self.take_pending().map_err(encode_error)? else {
            return Ok(());
        };
        // A counting sort of the rows by bucket.
        let buckets = bucket_of_rows(&rows, self.key).map_err(encode_error)?;
        let mut counts = [0usize; BUCKETS];
        for &bucket in &buckets {
            counts[bucket] += 1;
        }
        let mut next = [0usize; BUCKETS];
        for bucket in 1..BUCKETS {
            next[bucket] = next[bucket - 1] + counts[bucket - 1];
        }
        let starts = next;
        let mut order: Vec<IdxSize> = vec![0; buckets.len()];
        for (row, &bucket) in buckets.iter().enumerate() {
            order[next[bucket]] = row as IdxSize;
            next[bucket] += 1;
        }
        let sorted = rows
            .take(&IdxCa::from_vec("".into(), order))
            .map_err(encode_error)?;
        drop(rows);

        let file_index = self.files.len();
        let path = self.dir.join(format!("{file_index}.parquet"));
        let file = super::scratch::create_private_file(&path)
            .map_err(|source| spill_error(&path, source))?;
        let mut writer = ParquetWriter::new(std::io::BufWriter::new(file))
            .with_compression(ParquetCompression::Uncompressed)
            .with_statistics(StatisticsOptions::empty())
            .batched(sorted.schema())
            .map_err(encode_error)?;
        for bucket in 0..BUCKETS {
            if counts[bucket] == 0 {
                continue;
            }
            let group = sorted.slice(starts[bucket] as i64, counts[bucket]);
            writer.write_batch(&group).map_err(encode_error)?;
            self.parts[bucket].push((file_index, starts[bucket], counts[bucket]));
            self.rows[bucket] += counts[bucket] as u64;
        }
        writer.finish().map_err(encode_error)?;
        self.files.push(path);
        Ok(())
    }
}

/// Rows kept in memory by every spill of the process ([`reserve`]).
static KEPT_ROWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Room for `rows` more rows kept in memory if the process then keeps at
/// most `cap`; given back when the reservation is dropped.
pub fn reserve(rows: u64, cap: u64) -> Option<Reservation> {
    use std::sync::atomic::Ordering;
    KEPT_ROWS
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |kept| {
            kept.checked_add(rows).filter(|&total| total <= cap)
        })
        .ok()
        .map(|_| Reservation { rows })
}

/// Rows a spill keeps in memory, counted against [`reserve`]'s cap.
#[derive(Debug)]
pub struct Reservation {
    rows: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        KEPT_ROWS.fetch_sub(self.rows, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A flush kept in memory, and the bucket of each of its rows once a read
/// of part of the buckets has needed them.
#[derive(Debug)]
struct Resident {
    rows: DataFrame,
    buckets: OnceLock<Vec<u8>>,
}

impl Resident {
    /// Its rows in `buckets`.
    fn rows_in(&self, key: SpillKey, buckets: Range<usize>) -> PolarsResult<DataFrame> {
        if buckets == (0..BUCKETS) {
            return Ok(self.rows.clone());
        }
        let of_rows = match self.buckets.get() {
            Some(of_rows) => of_rows,
            None => {
                let computed = bucket_of_rows(&self.rows, key)?
                    .into_iter()
                    .map(|b| b as u8)
                    .collect();
                self.buckets.get_or_init(|| computed)
            }
        };
        let (start, end) = (buckets.start as u8, buckets.end as u8);
        let mask: BooleanChunked = of_rows
            .iter()
            .map(|&b| Some(b >= start && b < end))
            .collect();
        self.rows.filter(&mask)
    }
}

impl Spill {
    /// Where the rows of `buckets` lie: (file, first row, rows), one slice
    /// per file. A file is sorted by bucket, so the row groups of
    /// consecutive buckets are one run of rows: a group of many buckets is
    /// read with one open and one decode per file, not one per bucket.
    fn slices(&self, buckets: Range<usize>) -> Vec<(usize, usize, usize)> {
        let mut slices: Vec<(usize, usize, usize)> = Vec::new();
        let mut by_file: Vec<&(usize, usize, usize)> =
            buckets.flat_map(|b| &self.parts[b]).collect();
        by_file.sort_by_key(|&&(file, offset, _)| (file, offset));
        for &(file, offset, len) in by_file {
            match slices.last_mut() {
                Some((f, start, rows)) if *f == file && *start + *rows == offset => *rows += len,
                _ => slices.push((file, offset, len)),
            }
        }
        slices
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn encode_error(source: PolarsError) -> LoadError {
    LoadError::Encode {
        table: "spill".to_string(),
        source,
    }
}

fn decode_error(path: &Path, source: PolarsError) -> LoadError {
    LoadError::Decode {
        path: path.display().to_string(),
        source,
    }
}

fn spill_error(path: &Path, source: std::io::Error) -> LoadError {
    LoadError::Spill {
        path: path.to_path_buf(),
        source,
    }
}

/// The bucket of each row: a fixed hash of its key.
fn bucket_of_rows(rows: &DataFrame, key: SpillKey) -> PolarsResult<Vec<usize>> {
    let string = |name: &str| -> PolarsResult<StringChunked> {
        Ok(rows
            .column(name)?
            .cast(&DataType::String)?
            .str()?
            .rechunk()
            .into_owned())
    };
    let (accounts, members) = (string("account_id")?, string("member_id")?);
    let unionids = match key {
        SpillKey::Person => Some(string("unionid")?),
        SpillKey::Member => None,
    };
    let mut buckets = Vec::with_capacity(rows.height());
    for row in 0..rows.height() {
        let unionid = unionids.as_ref().and_then(|u| u.get(row));
        let bucket = match unionid {
            Some(unionid) => bucket_of(&[unionid]),
            None => bucket_of(&[
                accounts.get(row).unwrap_or_default(),
                "/",
                members.get(row).unwrap_or_default(),
            ]),
        };
        buckets.push(bucket);
    }
    Ok(buckets)
}

/// The bucket of the key made of `parts` (concatenated): SipHash with fixed
/// keys, so equal keys share a bucket in every spill of every process.
fn bucket_of(parts: &[&str]) -> usize {
    let mut hasher = DefaultHasher::new();
    for part in parts {
        hasher.write(part.as_bytes());
    }
    0xffu8.hash(&mut hasher);
    (hasher.finish() % BUCKETS as u64) as usize
}

/// Consecutive bucket ranges whose rows on disk, summed over `spills`, stay
/// under `max_rows` (a bucket larger than that is a group of its own); rows
/// kept in memory do not count, so spills held in memory are one group. Every
/// bucket is in exactly one range; there is always at least one.
pub fn groups(spills: &[&Spill], max_rows: u64) -> Vec<Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut rows) = (0, 0u64);
    for bucket in 0..BUCKETS {
        let n: u64 = spills.iter().map(|s| s.rows[bucket]).sum();
        if bucket > start && rows + n > max_rows {
            groups.push(start..bucket);
            (start, rows) = (bucket, 0);
        }
        rows += n;
    }
    groups.push(start..BUCKETS);
    groups
}

/// The rows of `buckets` in `spills` (flushed), in spill order, or `empty`'s
/// schema when there are none.
pub fn read(
    spills: &[&Spill],
    buckets: Range<usize>,
    empty: &DataFrame,
) -> Result<DataFrame, LoadError> {
    let mut parts = Vec::new();
    for spill in spills {
        debug_assert!(spill.pending.is_empty(), "read of an unflushed spill");
        for (file, offset, len) in spill.slices(buckets.clone()) {
            let path = &spill.files[file];
            let reader = std::fs::File::open(path).map_err(|source| spill_error(path, source))?;
            let part = ParquetReader::new(reader)
                .with_slice(Some((offset, len)))
                .finish()
                .map_err(|source| decode_error(path, source))?;
            parts.push(part);
        }
        // Kept rows are the last pushed: they come after the files.
        for resident in &spill.resident {
            let rows = resident
                .rows_in(spill.key, buckets.clone())
                .map_err(|source| decode_error(&spill.dir, source))?;
            parts.push(rows);
        }
    }
    let out = super::stack(parts).map_err(|source| {
        let dir = spills
            .first()
            .map_or(Path::new("spill"), |s| s.dir.as_path());
        decode_error(dir, source)
    })?;
    let mut out = out.unwrap_or_else(|| empty.clone());
    out.rechunk_mut();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize, unresolved_every: usize) -> DataFrame {
        let accounts: Vec<String> = (0..n).map(|i| format!("acct{}", i % 3)).collect();
        let members: Vec<String> = (0..n).map(|i| format!("o{i:08}")).collect();
        let unionids: Vec<Option<String>> = (0..n)
            .map(|i| (i % unresolved_every != 0).then(|| format!("u{:06}", i / 2)))
            .collect();
        df!("account_id" => accounts, "member_id" => members, "unionid" => unionids).unwrap()
    }

    #[test]
    fn every_row_comes_back_once_and_a_persons_rows_share_a_bucket() {
        let mut spill = Spill::new(SpillKey::Person).unwrap();
        let input = rows(5_000, 7);
        // Two flushes: two files, each with a row group per bucket.
        spill.push(input.slice(0, 1_234)).unwrap();
        spill.flush().unwrap();
        spill.push(input.slice(1_234, 5_000)).unwrap();
        spill.flush().unwrap();
        assert_eq!(spill.files.len(), 2);
        assert_eq!(spill.rows(), 5_000);
        // All buckets: one slice per file, covering the file.
        assert_eq!(spill.slices(0..BUCKETS), [(0, 0, 1_234), (1, 0, 3_766)]);
        let empty = input.clear();
        let groups = groups(&[&spill], 300);
        assert!(groups.len() > 5, "{groups:?}");
        let mut seen = Vec::new();
        let mut unionid_group = std::collections::HashMap::new();
        for (g, range) in groups.iter().enumerate() {
            let part = read(&[&spill], range.clone(), &empty).unwrap();
            for row in 0..part.height() {
                let member = part.column("member_id").unwrap().str().unwrap().get(row);
                seen.push(member.unwrap().to_string());
                if let Some(u) = part.column("unionid").unwrap().str().unwrap().get(row) {
                    // u{i/2} is shared by two rows: they must be in one group.
                    assert_eq!(*unionid_group.entry(u.to_string()).or_insert(g), g);
                }
            }
        }
        seen.sort();
        let mut expected: Vec<String> = (0..5_000).map(|i| format!("o{i:08}")).collect();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn rows_kept_in_memory_come_back_with_those_on_disk_bucket_by_bucket() {
        let input = rows(6_000, 5);
        let empty = input.clear();
        let mut spill = Spill::new(SpillKey::Person).unwrap();
        spill.push(input.slice(0, 2_000)).unwrap();
        spill.flush().unwrap();
        spill.push(input.slice(2_000, 1_500)).unwrap();
        spill.push(input.slice(3_500, 2_500)).unwrap();
        assert_eq!(spill.pending_rows(), 4_000);
        spill.keep().unwrap();
        assert_eq!((spill.files.len(), spill.resident.len()), (1, 1));
        assert_eq!(spill.rows(), 6_000);
        // Only the 2,000 rows on disk make groups.
        let ranges = groups(&[&spill], 300);
        assert!(ranges.len() > 3 && ranges.len() < 10, "{ranges:?}");
        let mut on_disk = Spill::new(SpillKey::Person).unwrap();
        on_disk.push(input.clone()).unwrap();
        on_disk.flush().unwrap();
        let sorted = |frame: DataFrame| frame.sort(["member_id"], Default::default()).unwrap();
        let mut total = 0;
        for range in ranges {
            let part = read(&[&spill], range.clone(), &empty).unwrap();
            total += part.height();
            assert_eq!(
                sorted(part),
                sorted(read(&[&on_disk], range, &empty).unwrap())
            );
        }
        assert_eq!(total, 6_000);
        // Kept rows alone: one group, read as they are.
        let mut kept = Spill::new(SpillKey::Member).unwrap();
        kept.push(input.clone()).unwrap();
        kept.keep().unwrap();
        let one = groups(&[&kept], 300);
        assert_eq!((one.len(), one[0].clone()), (1, 0..BUCKETS));
        assert_eq!(read(&[&kept], 0..BUCKETS, &empty).unwrap(), input);
    }

    #[test]
    fn two_spills_of_one_key_agree_on_buckets() {
        let (mut a, mut b) = (
            Spill::new(SpillKey::Member).unwrap(),
            Spill::new(SpillKey::Member).unwrap(),
        );
        let input = rows(2_000, 3);
        a.push(input.clone()).unwrap();
        b.push(input.clone()).unwrap();
        a.flush().unwrap();
        b.flush().unwrap();
        assert_eq!(a.rows, b.rows);
        for range in groups(&[&a, &b], 100) {
            let both = read(&[&a, &b], range, &input.clear()).unwrap();
            // Every member read from `a` is read from `b` in the same group.
            assert_eq!(both.height() % 2, 0);
        }
    }

    #[test]
    fn an_empty_spill_is_one_group_of_no_rows_and_its_folder_goes_with_it() {
        let spill = Spill::new(SpillKey::Person).unwrap();
        let dir = spill.dir.clone();
        let empty = rows(0, 1);
        assert_eq!(groups(&[&spill], 10), vec![0..BUCKETS]);
        assert_eq!(read(&[&spill], 0..BUCKETS, &empty).unwrap().height(), 0);
        drop(spill);
        assert!(!dir.exists());
    }
}
