//! The Kubernetes manifests and the Dockerfile of `jobs/k8s/`: no cluster or
//! container engine exists here, so these tests parse them and check the
//! fields that make them behave (SPEC §2 exit codes, secrets, sizing), and
//! run them through `kubernetes-validate --strict`: the OpenAPI schemas the
//! API server publishes, for every supported Kubernetes release, with
//! unknown fields rejected.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The Kubernetes releases the manifests support (README "Kubernetes"): from
/// 1.29, the first with `backoffLimitPerIndex` on by default, to the newest
/// whose schemas the pinned kubernetes-validate ships (Makefile).
const OLDEST_MINOR: u32 = 29;
const NEWEST_MINOR: u32 = 37;

fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs/k8s")
}

/// Every YAML document of `jobs/k8s/NAME`.
fn documents(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(k8s_dir().join(name)).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap())
        .collect()
}

fn kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// The job file inside the ConfigMap, validated like any job file (secrets
/// filled with placeholders: they come from the Secret at run time).
fn configmap_job() -> unionsnap::job::Job {
    let docs = documents("configmap.yaml");
    let text = docs[0]["data"]["job.toml"].as_str().unwrap();
    unionsnap::job::parse(text, Path::new("/etc/unionsnap/job.toml"), &|_| {
        Some("placeholder".to_string())
    })
    .unwrap()
}

fn exit_code_rules(job_spec: &Value, action: &str) -> Vec<i64> {
    job_spec["podFailurePolicy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rule| rule["action"] == action)
        .filter(|rule| rule["onExitCodes"]["operator"] == "In")
        .flat_map(|rule| rule["onExitCodes"]["values"].as_array().unwrap().clone())
        .map(|v| v.as_i64().unwrap())
        .collect()
}

fn ignores_disruptions(job_spec: &Value) -> bool {
    job_spec["podFailurePolicy"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|rule| {
            let condition = &rule["onPodConditions"][0];
            rule["action"] == "Ignore"
                && condition["type"] == "DisruptionTarget"
                && condition["status"] == "True"
        })
}

fn container(job_spec: &Value) -> &Value {
    &job_spec["template"]["spec"]["containers"][0]
}

/// Pods get the Secret, run as non-root, and have sized memory and a
/// writable /tmp.
fn assert_pod_basics(job_spec: &Value) {
    let pod = &job_spec["template"]["spec"];
    assert_eq!(
        pod["restartPolicy"], "Never",
        "podFailurePolicy needs restartPolicy Never"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"], 0);
    let c = container(job_spec);
    assert_eq!(c["name"], "unionsnap");
    assert_eq!(c["envFrom"][0]["secretRef"]["name"], "unionsnap-secrets");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["volumeMounts"][0]["mountPath"], "/etc/unionsnap");
    // The root filesystem is read-only: the dedupe spills to /tmp (TMPDIR),
    // which must be a writable volume.
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let scratch = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/tmp")
        .expect("a writable /tmp");
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == scratch["name"])
        .expect("the /tmp volume");
    assert!(volume["emptyDir"]["sizeLimit"].is_string(), "{volume}");
}

#[test]
fn the_cronjob_forbids_overlap_and_does_not_retry_exit_2_or_3() {
    let docs = documents("cronjob.yaml");
    let cronjob = kind(&docs, "CronJob")[0];
    assert_eq!(cronjob["apiVersion"], "batch/v1");
    let spec = &cronjob["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Forbid");
    assert!(spec["startingDeadlineSeconds"].as_i64().unwrap() > 0);
    let job_spec = &spec["jobTemplate"]["spec"];
    let no_retry = exit_code_rules(job_spec, "FailJob");
    assert!(
        no_retry.contains(&2) && no_retry.contains(&3),
        "{no_retry:?}"
    );
    assert!(!no_retry.contains(&1), "exit 1 (transient) must be retried");
    assert!(ignores_disruptions(job_spec));
    assert_pod_basics(job_spec);
    let args = container(job_spec)["args"].as_array().unwrap();
    assert_eq!(args[0], "run");
    assert_eq!(args[1], "/etc/unionsnap/job.toml");
}

#[test]
fn the_cronjob_schedule_and_timezone_match_the_job_file() {
    let docs = documents("cronjob.yaml");
    let spec = &kind(&docs, "CronJob")[0]["spec"];
    let job = configmap_job();
    assert_eq!(spec["timeZone"], job.timezone.name());
    // The job file's cron has seconds first; Kubernetes' has none.
    let source = job.schedule.as_ref().unwrap().source().to_string();
    let (seconds, rest) = source.split_once(' ').unwrap();
    assert_eq!(seconds, "0");
    assert_eq!(spec["schedule"], rest);
}

#[test]
fn every_secret_the_job_file_reads_comes_from_the_secret() {
    let secret = &documents("secret.example.yaml")[0];
    assert_eq!(secret["kind"], "Secret");
    let keys: Vec<&String> = secret["stringData"].as_object().unwrap().keys().collect();
    let text = documents("configmap.yaml")[0]["data"]["job.toml"]
        .as_str()
        .unwrap()
        .to_string();
    let named = std::cell::RefCell::new(Vec::new());
    unionsnap::job::parse(&text, Path::new("job.toml"), &|var| {
        named.borrow_mut().push(var.to_string());
        Some("placeholder".to_string())
    })
    .unwrap();
    let named = named.into_inner();
    assert!(!named.is_empty());
    for var in &named {
        assert!(keys.iter().any(|k| k == &var), "{var} is not in the Secret");
    }
}

#[test]
fn the_indexed_job_shards_by_completion_index_and_the_merge_job_commits() {
    let docs = documents("indexed-job.yaml");
    let jobs = kind(&docs, "Job");
    assert_eq!(jobs.len(), 2);
    let extract = &jobs[0]["spec"];
    assert_eq!(extract["completionMode"], "Indexed");
    let completions = extract["completions"].as_i64().unwrap();
    assert!(completions > 1);
    let env = container(extract)["env"].as_array().unwrap();
    let var = |name: &str| {
        env.iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        var(unionsnap::shard::COUNT_ENV),
        Some(completions.to_string())
    );
    let no_retry = exit_code_rules(extract, "FailIndex");
    assert!(no_retry.contains(&2) && no_retry.contains(&3));
    assert!(extract["backoffLimitPerIndex"].as_i64().is_some());
    assert!(ignores_disruptions(extract));
    assert_pod_basics(extract);
    assert_eq!(container(extract)["args"][0], "run");

    let merge = &jobs[1]["spec"];
    assert_eq!(container(merge)["args"][0], "merge");
    // Both name the same date, so pods that straddle midnight agree.
    let merge_env = container(merge)["env"].as_array().unwrap();
    let merge_date = merge_env
        .iter()
        .find(|e| e["name"] == "SNAPSHOT_DATE")
        .map(|e| e["value"].clone());
    assert_eq!(
        merge_date.and_then(|v| v.as_str().map(str::to_owned)),
        var("SNAPSHOT_DATE")
    );
    assert!(container(merge)["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "$(SNAPSHOT_DATE)"));
    // A shard that has not landed makes merge exit 3: that one is retried.
    let merge_no_retry = exit_code_rules(merge, "FailJob");
    assert!(merge_no_retry.contains(&2) && !merge_no_retry.contains(&3));
    assert!(ignores_disruptions(merge));
    assert_pod_basics(merge);
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_and_without_openssl() {
    let text = std::fs::read_to_string(k8s_dir().join("Dockerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let stages = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(stages >= 2, "multi-stage");
    let last_from = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let user = lines[last_from..]
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "0" && uid != "root", "runs as {user}");
    assert!(lines
        .iter()
        .any(|l| l.contains("cargo build --release --locked")));
    let lower = text.to_lowercase();
    assert!(!lower.contains("libssl") && !lower.contains("openssl-dev"));
    // rustls, not native-tls: no OpenSSL to ship.
    let cargo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(cargo.contains("rustls-tls"));
    assert!(!cargo.contains("native-tls"));
    let lock =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock")).unwrap();
    assert!(!lock.contains("name = \"openssl-sys\""));
}

/// Every YAML manifest of `jobs/k8s/`, sorted.
fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(k8s_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// What a platform team runs before `kubectl apply`: every document of every
/// manifest against the API schemas of every supported release, strict
/// (unknown fields rejected). 1.29 to 1.34 require `status` on a pod
/// condition of a `podFailurePolicy` rule, for one.
#[test]
fn every_manifest_passes_kubernetes_validate_strict_for_every_supported_release() {
    let versions: Vec<String> = (OLDEST_MINOR..=NEWEST_MINOR)
        .map(|minor| format!("1.{minor}"))
        .collect();
    let files = manifests();
    let mut cmd = std::process::Command::new("python3");
    cmd.args(["-m", "kubernetes_validate", "--strict"]);
    for version in &versions {
        cmd.args(["-k", version]);
    }
    let out = cmd
        .args(&files)
        .output()
        .expect("python3 with kubernetes-validate (make test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "kubernetes-validate --strict -k 1.{OLDEST_MINOR} .. -k 1.{NEWEST_MINOR} rejects jobs/k8s/:\n{text}"
    );
    // Every document was validated, for every release: none skipped.
    let documents: usize = files
        .iter()
        .map(|file| documents(file.file_name().unwrap().to_str().unwrap()).len())
        .sum();
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    assert_eq!(passed, documents * versions.len(), "{text}");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Kubernetes 1.{OLDEST_MINOR} to 1.{NEWEST_MINOR}")),
        "README names the releases this test validates"
    );
}
