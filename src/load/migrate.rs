//! `unionsnap migrate OUTPUT`: adopts a warehouse written before the tables
//! were Delta tables (files named `part-0.parquet`, markers of format 1).
//!
//! Each complete date is committed to the Delta tables as it is — its files
//! stay where they are, with statistics read from them — and its marker is
//! rewritten in format 2, naming the versions. Dates already in format 2 are
//! left alone, so the command can be run again. Run it while no run of the
//! job writes the output.

use std::sync::Arc;

use chrono::NaiveDate;

use super::commit::{self, ManifestFile, SnapshotWriter};
use super::delta::{Fence, FileFacts, FileStats};
use super::{LoadError, Store};

/// The dates adopted, oldest first.
pub async fn migrate(store: &Store) -> Result<Vec<NaiveDate>, LoadError> {
    let mut adopted = Vec::new();
    for date in commit::complete_dates(store).await? {
        let Some(marker) = commit::read_manifest(store, date).await? else {
            continue;
        };
        if marker.format_version >= commit::MANIFEST_FORMAT_VERSION {
            continue;
        }
        let mut writer = SnapshotWriter::begin(store.clone(), date, &marker.run_id);
        for file in &marker.files {
            let (frame, bytes) = commit::read_file_with_bytes(store, &file.path).await?;
            let encode = |source| LoadError::Encode {
                table: file.table.clone(),
                source,
            };
            let stats = FileStats::of_file(&frame, &bytes).map_err(encode)?;
            let facts = FileFacts::new(&file.table, frame.schema(), &stats)?;
            drop((frame, bytes));
            writer.add_file(ManifestFile {
                facts: Some(Arc::new(facts)),
                ..file.clone()
            });
        }
        // Epoch 0: below every lease a run of the date takes from now on.
        writer
            .commit(&marker.job, marker.accounts.clone(), Fence { epoch: 0 })
            .await?;
        tracing::info!(snapshot_date = %date, files = marker.files.len(), "adopted into the Delta tables");
        adopted.push(date);
    }
    Ok(adopted)
}
