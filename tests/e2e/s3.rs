//! The object-store path against a real S3-compatible server: moto's server
//! mode on 127.0.0.1, started by the test.

use std::time::Duration;

use crate::common::*;

/// moto's S3 server on a free port, stopped when dropped.
struct Moto {
    _child: tokio::process::Child,
    endpoint: String,
}

async fn start_moto() -> Moto {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new("python3")
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 -m moto.server (make test installs moto[server])");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(&endpoint).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = http
        .put(format!("{endpoint}/unionsnap-test"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "create bucket: {created:?}");
    Moto {
        _child: child,
        endpoint,
    }
}

fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

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

    let store = {
        use object_store::aws::AmazonS3Builder;
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("unionsnap-test")
            .with_endpoint(&moto.endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_region("us-east-1")
            .build()
            .unwrap();
        let prefixed = object_store::prefix::PrefixStore::new(s3, "wechat/prod");
        std::sync::Arc::new(prefixed) as unionsnap::load::Store
    };
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
