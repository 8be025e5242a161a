//! The object-store path against a real S3-compatible server: moto's server
//! mode on 127.0.0.1, started by the test.

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_writes_the_same_objects_to_s3_as_to_a_folder() {
    let moto = start_moto().await;
    let fixture = Fixture::start(scenario(
        61,
        3_000,
        &[("brand_oa", 0.5, true), ("legacy_oa", 0.3, false)],
    ))
    .await;
    assert_exit(&fixture.run_job(&fixture.write_job(), &[]).await, 0);

    let env = s3_env(&moto.endpoint);
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s3_job = fixture.write_job_with_output("s3://unionsnap-test/wechat/prod");
    let out = fixture.run_job(&s3_job, &env_refs).await;
    assert_exit(&out, 0);

    let store = moto.store("wechat/prod");
    let in_s3 = read_store_tables(&store).await;
    let in_folder = read_local_tables(&fixture.output_dir());
    assert_same_tables(&in_folder, &in_s3);
    assert!(in_s3
        .iter()
        .any(|(p, _)| p == "_manifests/snapshot_date=2026-11-21/manifest.json"));

    // The report reads S3 too.
    let report = fixture
        .unionsnap(&["report", "s3://unionsnap-test/wechat/prod"], &env_refs)
        .await;
    assert_exit(&report, 0);
    assert!(stdout(&report).contains("brand_oa"), "{}", stdout(&report));
}
