//! No secret or access token reaches a log line, an error, stdout or an
//! output file — also at trace level, under faults and failures.

use crate::common::*;
use unionsnap::simulator::{FaultKind, Faults};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_token_appears_in_logs_errors_or_outputs() {
    let mut scenario = scenario(
        71,
        3_000,
        &[
            ("brand_oa", 0.5, true),
            ("news_oa", 0.3, true),
            ("bad_oa", 0.2, true),
        ],
    );
    scenario.faults = Faults {
        seed: 3,
        rate: 0.1,
        kinds: FaultKind::all().to_vec(),
        latency: std::time::Duration::ZERO,
    };
    let fixture = Fixture::start(scenario).await;
    let job = fixture.write_job();
    // bad_oa gets a wrong secret, so the token error path runs and prints too.
    let metrics = fixture.dir.path().join("metrics.prom");
    let run = fixture
        .unionsnap(
            &[
                "run",
                job.to_str().unwrap(),
                "--date",
                DATE,
                "--metrics-file",
                metrics.to_str().unwrap(),
            ],
            &[
                ("RUST_LOG", "trace"),
                ("UNIONSNAP_SIM_SECRET_BAD_OA", "wrong-secret-5555"),
            ],
        )
        .await;
    assert_exit(&run, 3);
    let validate = fixture
        .unionsnap(&["validate", job.to_str().unwrap()], &[])
        .await;
    assert_exit(&validate, 0);

    let mut haystack = String::new();
    for out in [&run, &validate] {
        haystack.push_str(&stdout(out));
        haystack.push_str(&stderr(out));
    }
    assert!(
        haystack.contains("TRACE") || haystack.contains("\"level\":\"TRACE\""),
        "trace logs were on"
    );
    let metrics = std::fs::read_to_string(&metrics).expect("the metrics file was written");
    assert!(metrics.contains("unionsnap_"), "{metrics}");
    haystack.push_str(&metrics);
    for path in files_under(&fixture.output_dir()) {
        let bytes = std::fs::read(fixture.output_dir().join(&path)).unwrap();
        haystack.push_str(&String::from_utf8_lossy(&bytes));
    }
    let mut secrets: Vec<String> = fixture
        .scenario
        .secret_env()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    secrets.push("wrong-secret-5555".to_string());
    for secret in &secrets {
        assert!(!haystack.contains(secret.as_str()), "a secret leaked");
    }
    let tokens = fixture.server.issued_tokens();
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert!(!haystack.contains(token.as_str()), "an access token leaked");
    }
}
