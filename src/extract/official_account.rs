//! Official Account followers: user/get pages → batchget chunks of 100 →
//! the `followers` table.

use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use polars::prelude::*;

use crate::load::layout;
use crate::transform::timestamp_type;
use crate::wechat::{ApiError, OfficialAccountClient, UserInfo};

use super::{ExtractProgress, NoProgress, RawShape, RawTable};

/// The `followers` table: one row per follower, keyed by `openid`.
pub const SHAPE: RawShape = RawShape {
    table: layout::FOLLOWERS,
    member_col: "openid",
    joined_col: "subscribe_time",
};

/// user/info/batchget takes at most 100 OpenIDs per call (wechat-api.md §1.5).
pub const BATCHGET_MAX: usize = 100;

/// Snapshots the followers of one Official Account.
///
/// Lists every OpenID, then fetches profiles with `concurrency` batchget calls
/// in flight. Followers that batchget reports as `subscribe: 0` unfollowed
/// during the crawl and are not members of the snapshot (SPEC §5).
pub async fn snapshot(
    client: &OfficialAccountClient,
    concurrency: usize,
) -> Result<RawTable, ApiError> {
    snapshot_with_progress(client, concurrency, &NoProgress).await
}

/// [`snapshot`], reporting each `user/get` page and each batchget chunk to
/// `progress` as it lands.
pub async fn snapshot_with_progress(
    client: &OfficialAccountClient,
    concurrency: usize,
    progress: &dyn ExtractProgress,
) -> Result<RawTable, ApiError> {
    let mut openids = Vec::new();
    let mut pager = client.followers();
    while let Some(page) = pager.next_page().await? {
        openids.extend(page.openids);
        progress.page_listed(page.total, openids.len() as u64);
    }
    // The list moves while it is paged (follows, unfollows): an OpenID may
    // show up on two pages. Keep the first occurrence, in list order.
    let mut seen = std::collections::HashSet::with_capacity(openids.len());
    openids.retain(|openid| seen.insert(openid.clone()));
    drop(seen);

    let profiles: Vec<Vec<UserInfo>> = futures::stream::iter(openids.chunks(BATCHGET_MAX))
        .map(|chunk| async move {
            let profiles = client.batchget(chunk).await?;
            progress.profiled(chunk.len() as u64);
            Ok::<_, ApiError>(profiles)
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let followers: Vec<UserInfo> = profiles
        .into_iter()
        .flatten()
        .filter(|user| user.subscribe == 1)
        .collect();
    Ok(RawTable {
        table: SHAPE.table,
        member_col: SHAPE.member_col,
        joined_col: SHAPE.joined_col,
        frame: followers_frame(&followers, Utc::now().timestamp_micros()),
    })
}

/// The `followers` table (SPEC §4) from user/info profiles.
pub fn followers_frame(users: &[UserInfo], fetched_at_micros: i64) -> DataFrame {
    let n = users.len();
    let strings =
        |f: fn(&UserInfo) -> Option<&str>| -> Vec<Option<&str>> { users.iter().map(f).collect() };
    let mut tags =
        ListPrimitiveChunkedBuilder::<Int32Type>::new("tagid_list".into(), n, n, DataType::Int32);
    for user in users {
        tags.append_slice(&user.tagid_list);
    }
    let micros = |secs: Option<i64>| secs.map(|s| s.saturating_mul(1_000_000));
    let subscribe_time: Int64Chunked = users.iter().map(|u| micros(u.subscribe_time)).collect();
    let fetched: Int64Chunked = std::iter::repeat_n(Some(fetched_at_micros), n).collect();
    let qr_scene: Int64Chunked = users.iter().map(|u| u.qr_scene).collect();
    let as_timestamp = |name: &str, ca: Int64Chunked| -> Column {
        ca.with_name(name.into())
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column()
    };
    debug_assert_eq!(
        timestamp_type(),
        DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    let columns = vec![
        Column::new("openid".into(), strings(|u| Some(u.openid.as_str()))),
        Column::new("unionid".into(), strings(|u| u.unionid.as_deref())),
        as_timestamp("subscribe_time", subscribe_time),
        Column::new(
            "subscribe_scene".into(),
            strings(|u| u.subscribe_scene.as_deref()),
        ),
        Column::new("language".into(), strings(|u| u.language.as_deref())),
        Column::new("remark".into(), strings(|u| u.remark.as_deref())),
        tags.finish().into_column(),
        qr_scene.with_name("qr_scene".into()).into_column(),
        Column::new(
            "qr_scene_str".into(),
            strings(|u| u.qr_scene_str.as_deref()),
        ),
        as_timestamp("profile_fetched_at", fetched),
    ];
    DataFrame::new(n, columns).expect("columns of equal length")
}
