//! Reading stored table files a few columns or a slice at a time: the file
//! is first copied to a local temporary file (streamed, whatever the store),
//! so Parquet can be read from it without holding the whole file in memory.

use std::io::Write as _;

use futures::StreamExt;
use object_store::{path::Path, ObjectStoreExt};
use polars::prelude::*;

use super::parquet::{guarded, guarded_frame};
use super::stream::STREAM_ROW_GROUP_ROWS;
use super::{store::Store, LoadError};

/// Reads only `columns` of one table file; also returns the file's size.
pub async fn read_columns(
    store: &Store,
    path: &str,
    columns: &[&str],
) -> Result<(DataFrame, u64), LoadError> {
    let local = LocalCopy::fetch(store, path).await?;
    let frame = ParquetReader::new(local.open()?)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(|source| LoadError::Decode {
            path: path.to_string(),
            source,
        })?;
    Ok((frame, local.size))
}

/// Reads `columns` (all when `None`) of one table file a row group (or a few
/// small ones) at a time, giving each slice to `each` ([`LocalCopy::slices`]);
/// returns the file's rows and size.
pub async fn for_each_slice<E: From<LoadError>>(
    store: &Store,
    path: &str,
    columns: Option<&[&str]>,
    each: impl FnMut(DataFrame) -> Result<(), E>,
) -> Result<(u64, u64), E> {
    LocalCopy::fetch(store, path)
        .await?
        .for_each_slice(columns, each)
}

/// A stored file copied to a local temporary file, so that Parquet can be
/// read from it a row group at a time whatever the store.
pub(crate) struct LocalCopy {
    path: std::path::PathBuf,
    /// The stored file's path, relative to the store's root.
    source: String,
    size: u64,
}

impl LocalCopy {
    pub(crate) async fn fetch(store: &Store, path: &str) -> Result<LocalCopy, LoadError> {
        let location = Path::from(path);
        let io = |source: std::io::Error| LoadError::Upload {
            path: path.to_string(),
            source,
        };
        let local = super::scratch::path("copy", ".parquet");
        let mut file = super::scratch::create_private_file(&local).map_err(io)?;
        // Owns the file from here, so it is removed whatever happens next.
        let mut copy = LocalCopy {
            path: local,
            source: path.to_string(),
            size: 0,
        };
        let mut stream = store
            .get(&location)
            .await
            .map_err(|source| LoadError::store(&location, source))?
            .into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| LoadError::store(&location, source))?;
            copy.size += chunk.len() as u64;
            file.write_all(&chunk).map_err(io)?;
        }
        Ok(copy)
    }

    pub(crate) fn open(&self) -> Result<std::fs::File, LoadError> {
        std::fs::File::open(&self.path).map_err(|source| LoadError::Upload {
            path: self.path.display().to_string(),
            source,
        })
    }

    /// The stored file's path, relative to the store's root.
    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Reads `columns` (all when `None`) a slice at a time
    /// ([`Self::slices`]), giving each slice to `each`; returns the file's
    /// rows and size.
    pub(crate) fn for_each_slice<E: From<LoadError>>(
        &self,
        columns: Option<&[&str]>,
        mut each: impl FnMut(DataFrame) -> Result<(), E>,
    ) -> Result<(u64, u64), E> {
        let decode = |source| LoadError::Decode {
            path: self.source.clone(),
            source,
        };
        let mut total = 0;
        for (offset, len) in self.slices().map_err(decode)? {
            each(self.read_slice(offset, len, columns).map_err(decode)?)?;
            total += len;
        }
        Ok((total as u64, self.size))
    }

    /// The slices [`Self::for_each_slice`] reads, as (first row, rows),
    /// from the footer: whole row groups, consecutive small ones together
    /// up to [`STREAM_ROW_GROUP_ROWS`] rows, a bigger one in equal parts.
    /// A slice across two row groups would have each decoded twice.
    pub(crate) fn slices(&self) -> PolarsResult<Vec<(usize, usize)>> {
        let mut reader = ParquetReader::new(std::fs::File::open(&self.path)?);
        let metadata = guarded(|| reader.get_metadata().cloned())?;
        Ok(slices_of(
            metadata.row_groups.iter().map(|group| group.num_rows()),
            STREAM_ROW_GROUP_ROWS,
        ))
    }

    /// Checks the file's footer and page headers before polars reads it (a
    /// file from outside: [`super::parquet::check_file`]).
    pub(crate) fn check(&self) -> PolarsResult<()> {
        let file = std::fs::File::open(&self.path)?;
        // SAFETY: the copy is this run's own owner-only file, which nothing
        // writes while it is mapped (polars maps it the same way to read it).
        let map = unsafe { memmap2::Mmap::map(&file)? };
        super::parquet::check(&map)
    }

    /// The file's row count (from its footer).
    pub(crate) fn rows(&self) -> PolarsResult<usize> {
        let mut reader = ParquetReader::new(std::fs::File::open(&self.path)?);
        guarded(|| reader.num_rows())
    }

    /// `len` rows from `offset`, only `columns` when given.
    pub(crate) fn read_slice(
        &self,
        offset: usize,
        len: usize,
        columns: Option<&[&str]>,
    ) -> PolarsResult<DataFrame> {
        let file = std::fs::File::open(&self.path)?;
        guarded_frame(|| {
            ParquetReader::new(file)
                .with_columns(columns.map(|c| c.iter().map(|c| c.to_string()).collect()))
                .with_slice(Some((offset, len)))
                .finish()
        })
    }
}

/// Slices of at most `most` rows (but for a row group of no rows) that
/// follow the row groups of `groups` rows each: see [`LocalCopy::slices`].
fn slices_of(groups: impl IntoIterator<Item = usize>, most: usize) -> Vec<(usize, usize)> {
    let mut slices: Vec<(usize, usize)> = Vec::new();
    let mut offset = 0;
    let mut open = false;
    for rows in groups {
        if rows > most {
            let parts = rows.div_ceil(most);
            let mut start = 0;
            for part in 0..parts {
                let end = rows * (part + 1) / parts;
                slices.push((offset + start, end - start));
                start = end;
            }
            open = false;
        } else {
            match slices.last_mut() {
                Some((_, len)) if open && *len + rows <= most => *len += rows,
                _ => slices.push((offset, rows)),
            }
            open = true;
        }
        offset += rows;
    }
    slices.retain(|&(_, len)| len > 0);
    slices
}

impl Drop for LocalCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_follow_the_row_groups() {
        assert_eq!(slices_of([], 10), []);
        assert_eq!(slices_of([10, 10, 3], 10), [(0, 10), (10, 10), (20, 3)]);
        // Small row groups together, up to the most.
        assert_eq!(slices_of([3, 3, 3, 5, 0, 2], 10), [(0, 9), (9, 7)]);
        // A big one in equal parts, not with its neighbours.
        assert_eq!(
            slices_of([4, 25, 4], 10),
            [(0, 4), (4, 8), (12, 8), (20, 9), (29, 4)]
        );
    }

    /// Every row once, in order; no slice of more than the most, nor across
    /// a row group it does not hold whole.
    #[test]
    fn slices_cover_the_rows_within_their_row_groups() {
        let most = 6;
        for a in 0..14 {
            for b in 0..14 {
                for c in [0, 1, 5, 6, 7, 13] {
                    let groups = [a, b, c];
                    let starts: Vec<usize> = groups
                        .iter()
                        .scan(0, |at, n| {
                            *at += n;
                            Some(*at - n)
                        })
                        .collect();
                    let slices = slices_of(groups, most);
                    let mut at = 0;
                    for &(offset, len) in &slices {
                        assert_eq!(offset, at, "{groups:?}: {slices:?}");
                        assert!((1..=most).contains(&len), "{groups:?}: {slices:?}");
                        // Within one group, or whole groups only.
                        let end = offset + len;
                        let within =
                            (0..3).any(|g| starts[g] <= offset && end <= starts[g] + groups[g]);
                        let whole = (0..3).all(|g| {
                            let (s, e) = (starts[g], starts[g] + groups[g]);
                            e <= offset || end <= s || (offset <= s && e <= end)
                        });
                        assert!(within || whole, "{groups:?}: {slices:?}");
                        at = end;
                    }
                    assert_eq!(at, a + b + c);
                }
            }
        }
    }
}
