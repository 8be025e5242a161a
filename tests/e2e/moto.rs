//! moto's S3 server (Python, in-memory) on 127.0.0.1, started by the tests.

use std::time::Duration;

/// moto's S3 server on a free port, stopped when dropped.
pub struct Moto {
    _child: tokio::process::Child,
    pub endpoint: String,
}

pub async fn start_moto() -> Moto {
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

pub fn s3_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ]
}

impl Moto {
    /// The keys of the bucket's multipart uploads never completed nor
    /// aborted (S3's ListMultipartUploads; moto does not check signatures).
    pub async fn incomplete_uploads(&self) -> Vec<String> {
        let body = reqwest::get(format!("{}/unionsnap-test?uploads", self.endpoint))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        body.split("<Upload>")
            .skip(1)
            .filter_map(|upload| {
                let start = upload.find("<Key>")? + "<Key>".len();
                let end = upload.find("</Key>")?;
                Some(upload[start..end].to_string())
            })
            .collect()
    }

    /// The bucket `unionsnap-test` under `prefix`, as unionsnap's tests read it.
    pub fn store(&self, prefix: &str) -> unionsnap::load::Store {
        use object_store::aws::AmazonS3Builder;
        let s3 = AmazonS3Builder::new()
            .with_bucket_name("unionsnap-test")
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_region("us-east-1")
            .build()
            .unwrap();
        if prefix.is_empty() {
            return std::sync::Arc::new(s3);
        }
        std::sync::Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
    }
}
