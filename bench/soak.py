#!/usr/bin/env python3
"""`make soak`: `unionsnap serve` runs the job again and again against the
simulator with faults and daily churn; every run must commit the exact truth,
and the serving process's memory and open files must not grow.

SOAK_RUNS (default 50) runs; UNIONSNAP_BIN (default target/debug/unionsnap).
Memory and open-file growth are judged on 30 runs or more (CI's short soak
checks exactness only and prints the figures).

A run is compared with the truth only if it started after the simulator's
day last changed (its run id gives its start to the second): a run that
outlasts the interval is followed at once by the next, which may start
listing before the churn of the new day and then rightly matches neither
day. Such runs are counted, not judged; at least half of them must be.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from simclient import call, committed, free_port, wait_for_simulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("UNIONSNAP_BIN") or os.path.join(ROOT, "target", "debug", "unionsnap")
RUNS = int(os.environ.get("SOAK_RUNS", "50"))
EVERY = 4  # seconds between scheduled runs


def manifests(out):
    found = {}
    for path in glob.glob(os.path.join(out, "_manifests", "*", "manifest.json")):
        with open(path) as f:
            manifest = json.load(f)
        found[manifest["run_id"]] = manifest
    return found


def audience(out, date):
    import duckdb
    rows = duckdb.sql(f"""
        SELECT account_id, members, resolved, unresolved, exclusive_people, resolved_people,
               unique_people, duplicate_memberships
        FROM read_parquet({committed(out, date, "audience")!r}) ORDER BY account_id""").fetchall()
    return [list(r) for r in rows]


def run_started(run_id):
    """The second a run started, as epoch seconds (run ids begin with it)."""
    stamp = datetime.strptime(run_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ")
    return stamp.replace(tzinfo=timezone.utc).timestamp()


def truth_rows(truth):
    keys = ["account_id", "members", "resolved", "unresolved", "exclusive_people", "resolved_people",
            "unique_people", "duplicate_memberships"]
    return [[row[k] for k in keys] for row in sorted(truth["audience"], key=lambda r: r["account_id"])]


def proc_stats(pid):
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) // 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def main():
    work = tempfile.mkdtemp(prefix="unionsnap-soak-")
    port = free_port()
    sim = subprocess.Popen(
        [BIN, "simulate", "--addr", f"127.0.0.1:{port}", "--people", "20000",
         "--accounts", "brand_oa:0.5,news_oa:0.3,legacy_oa:0.15:unbound",
         "--fault-rate", "0.05", "--daily-churn", "0.02", "--write-job", work],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_for_simulator(sim, url, work)
    env = dict(os.environ, RUST_LOG="warn")
    with open(os.path.join(work, "secrets.env")) as f:
        for line in f:
            if line.startswith("export "):
                key, value = line[len("export "):].strip().split("=", 1)
                env[key] = value.strip("'\"")
    job = os.path.join(work, "job.toml")
    text = open(job).read()
    text = f'schedule = "*/{EVERY} * * * * *"\n' + text
    open(job, "w").write(text)
    out = os.path.join(work, "warehouse")

    serve = subprocess.Popen([BIN, "serve", job], env=env, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, "serve.log"), "w"))
    seen, samples, day, failures, raced = set(), [], 0, [], 0
    day_changed = 0.0  # when the simulator's day last changed (epoch seconds)
    deadline = time.monotonic() + RUNS * EVERY * 3 + 60
    try:
        while len(samples) < RUNS and time.monotonic() < deadline:
            time.sleep(0.2)
            if serve.poll() is not None:
                sys.exit(f"serve exited with {serve.returncode}; see {work}/serve.log")
            new = {k: v for k, v in manifests(out).items() if k not in seen}
            if not new:
                continue
            verdict = "exact"
            for run_id, manifest in new.items():
                seen.add(run_id)
                if run_started(run_id) < day_changed:
                    raced += 1
                    verdict = "raced the churn, not judged"
                    continue
                got = audience(out, manifest["snapshot_date"])
                want = truth_rows(call(url + "/_sim/truth", timeout=120))
                if got != want:
                    failures.append((len(samples), got, want))
                    verdict = "DIFFERS"
            samples.append(proc_stats(serve.pid))
            day += 1
            call(url + "/_sim/day", {"day": day}, timeout=120)  # churn before the next run
            day_changed = time.time()
            print(f"run {len(samples):3}: {verdict} rss={samples[-1][0]} MiB open_files={samples[-1][1]}",
                  flush=True)
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=30)

    if len(samples) < RUNS:
        sys.exit(f"only {len(samples)} of {RUNS} runs committed in time; see {work}/serve.log")
    if failures:
        run, got, want = failures[0]
        sys.exit(f"run {run} differs from the truth:\n got {got}\nwant {want}")
    if raced * 2 > len(samples):
        sys.exit(f"{raced} of {len(samples)} runs started before the day's churn and could not be "
                 f"judged: the runs outlast the {EVERY}s interval")
    if serve.returncode != 0:
        sys.exit(f"serve exited {serve.returncode} on SIGTERM")
    # Flatness: medians of the first and last third after a warm-up (the
    # connection pool makes open files swing by ~10 from run to run, so a
    # leak only shows over many runs; short runs report without judging).
    warm = samples[min(5, len(samples) - 1):]
    third = max(1, len(warm) // 3)
    median = lambda xs: sorted(xs)[len(xs) // 2]
    rss_early, rss_late = median([r for r, _ in warm[:third]]), median([r for r, _ in warm[-third:]])
    fds_early, fds_late = median([f for _, f in warm[:third]]), median([f for _, f in warm[-third:]])
    verdict = f"{len(samples) - raced} judged and exact" + (f", {raced} raced the churn" if raced else "")
    print(f"\n{RUNS} runs, {verdict}; median RSS {rss_early} → {rss_late} MiB, "
          f"median open files {fds_early} → {fds_late}")
    if RUNS >= 30:
        if rss_late > rss_early * 1.25 + 16:
            sys.exit("memory grows from run to run")
        if fds_late > fds_early + 8:
            sys.exit("open files grow from run to run")
    else:
        print(f"(growth is judged on 30 runs or more; this was {RUNS})")
    print("soak: ok")


if __name__ == "__main__":
    main()
