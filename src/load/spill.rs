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
//! others. The files are under the system temp folder (`TMPDIR`), private
//! to the user (see [`super::scratch`]), removed when the spill is dropped;
//! what a killed process leaves is removed by the next run's start.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::path::{Path, PathBuf};

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
            rows: vec![0; BUCKETS],
            pending: Vec::new(),
            pending_rows: 0,
        })
    }

    pub fn key(&self) -> SpillKey {
        self.key
    }

    /// Rows pushed so far.
    pub fn rows(&self) -> u64 {
        self.rows.iter().sum::<u64>() + self.pending_rows as u64
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
        let parts = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let encode = |source| LoadError::Encode {
            table: "spill".to_string(),
            source,
        };
        let Some(rows) = super::stack(parts).map_err(encode)? else {
            return Ok(());
        };
        // A counting sort of the rows by bucket.
        let buckets = bucket_of_rows(&rows, self.key).map_err(encode)?;
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
            .map_err(encode)?;
        drop(rows);

        let file_index = self.files.len();
        let path = self.dir.join(format!("{file_index}.parquet"));
        let file = super::scratch::create_private_file(&path)
            .map_err(|source| spill_error(&path, source))?;
        let mut writer = ParquetWriter::new(std::io::BufWriter::new(file))
            .with_compression(ParquetCompression::Uncompressed)
            .with_statistics(StatisticsOptions::empty())
            .batched(sorted.schema())
            .map_err(encode)?;
        for bucket in 0..BUCKETS {
            if counts[bucket] == 0 {
                continue;
            }
            let group = sorted.slice(starts[bucket] as i64, counts[bucket]);
            writer.write_batch(&group).map_err(encode)?;
            self.parts[bucket].push((file_index, starts[bucket], counts[bucket]));
            self.rows[bucket] += counts[bucket] as u64;
        }
        writer.finish().map_err(encode)?;
        self.files.push(path);
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
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

/// Consecutive bucket ranges whose rows, summed over `spills`, stay under
/// `max_rows` (a bucket larger than that is a group of its own). Every
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
        for &(file, offset, len) in buckets.clone().flat_map(|b| &spill.parts[b]) {
            let path = &spill.files[file];
            let reader = std::fs::File::open(path).map_err(|source| spill_error(path, source))?;
            let part = ParquetReader::new(reader)
                .with_slice(Some((offset, len)))
                .finish()
                .map_err(|source| decode_error(path, source))?;
            parts.push(part);
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
