//! Two runs of one job and date at once: the second exits 4 and writes
//! nothing; a dead holder's lease expires.

use std::time::Duration;

use crate::common::*;
use unionsnap::simulator::Faults;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_of_the_same_date_exits_4_and_writes_nothing() {
    let mut scenario = scenario(
        95,
        20_000,
        &[("brand_oa", 0.5, true), ("news_oa", 0.3, true)],
    );
    scenario.faults = Faults {
        latency: Duration::from_millis(20),
        ..Faults::none()
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    let lease = fixture
        .output_dir()
        .join(format!("_leases/snapshot_date={DATE}.json"));

    let first = tokio::process::Command::new(BIN)
        .args(["run", job.to_str().unwrap(), "--date", DATE])
        .envs(fixture.scenario.secret_env())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for _ in 0..1_000 {
        if lease.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(lease.exists(), "the first run took the lease");
    // Once the first run has both its tokens, any token call is the second run's.
    for _ in 0..1_000 {
        if fixture
            .server
            .stats()
            .ok_calls
            .get("/cgi-bin/stable_token")
            .copied()
            >= Some(2)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let tokens_before = fixture
        .server
        .stats()
        .ok_calls
        .get("/cgi-bin/stable_token")
        .copied();

    let second = fixture.run_job(&job, &[]).await;
    assert_exit(&second, 4);
    let message = stderr(&second);
    assert!(message.contains("holds the lease"), "{message}");
    assert_eq!(
        fixture
            .server
            .stats()
            .ok_calls
            .get("/cgi-bin/stable_token")
            .copied(),
        tokens_before,
        "the second run called nothing"
    );

    let first = first.wait_with_output().await.unwrap();
    assert_eq!(first.status.code(), Some(0));
    assert_matches_truth(&fixture).await;
    let released: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lease).unwrap()).unwrap();
    assert_eq!(
        released["released"], true,
        "released at the end (the object stays: the next holder's epoch follows it)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_of_a_dead_run_expires() {
    let fixture = Fixture::start(scenario(96, 2_000, &[("brand_oa", 0.5, true)])).await;
    let job = fixture.write_job();
    let lease = fixture
        .output_dir()
        .join(format!("_leases/snapshot_date={DATE}.json"));
    std::fs::create_dir_all(lease.parent().unwrap()).unwrap();
    let dead = serde_json::json!({
        "run_id": "killed-run", "host": "node-1", "pid": 1,
        "acquired_at": "2026-11-21T00:00:00Z", "expires_at": "2026-11-21T00:10:00Z"
    });
    std::fs::write(&lease, dead.to_string()).unwrap();
    // Its holder was killed without releasing it; it expired long ago.
    let out = fixture.run_job(&job, &[]).await;
    assert_exit(&out, 0);
    assert_matches_truth(&fixture).await;
}
