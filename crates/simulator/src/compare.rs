//! Reading the warehouse's `audience` and `overlap` tables back into the
//! simulator's truth rows, so the demo and the tests compare them exactly.

use polars::prelude::*;

use super::{AudienceRow, OverlapRow, Truth};

/// The `audience` table as truth rows (joined/left are not part of the truth).
pub fn audience_rows(audience: &DataFrame) -> PolarsResult<Vec<AudienceRow>> {
    let ids = audience.column("account_id")?.str()?;
    let kinds = audience.column("account_kind")?.str()?;
    let num = |name: &str| -> PolarsResult<Vec<Option<i64>>> {
        Ok(audience.column(name)?.i64()?.iter().collect())
    };
    let (members, resolved, unresolved) = (num("members")?, num("resolved")?, num("unresolved")?);
    let (exclusive, resolved_people) = (num("exclusive_people")?, num("resolved_people")?);
    let (unique, duplicates) = (num("unique_people")?, num("duplicate_memberships")?);
    Ok((0..audience.height())
        .map(|i| AudienceRow {
            account_id: ids.get(i).unwrap_or_default().to_string(),
            account_kind: kinds.get(i).map(str::to_string),
            members: members[i].unwrap_or(-1),
            resolved: resolved[i].unwrap_or(-1),
            unresolved: unresolved[i].unwrap_or(-1),
            exclusive_people: exclusive[i],
            resolved_people: resolved_people[i],
            unique_people: unique[i],
            duplicate_memberships: duplicates[i],
        })
        .collect())
}

/// The `overlap` table as truth rows.
pub fn overlap_rows(overlap: &DataFrame) -> PolarsResult<Vec<OverlapRow>> {
    let a = overlap.column("account_a")?.str()?;
    let b = overlap.column("account_b")?.str()?;
    let shared = overlap.column("shared_people")?.i64()?;
    Ok((0..overlap.height())
        .map(|i| OverlapRow {
            account_a: a.get(i).unwrap_or_default().to_string(),
            account_b: b.get(i).unwrap_or_default().to_string(),
            shared_people: shared.get(i).unwrap_or(-1),
        })
        .collect())
}

/// True when both tables equal the truth, row for row.
pub fn truth_matches(
    truth: &Truth,
    audience: &DataFrame,
    overlap: &DataFrame,
) -> PolarsResult<bool> {
    Ok(audience_rows(audience)? == truth.audience && overlap_rows(overlap)? == truth.overlap)
}
