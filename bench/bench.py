#!/usr/bin/env python3
"""`make bench`: unionsnap against its simulator at scale. Prints a table.

a. 10M followers over 5 accounts, first snapshot, zero latency: wall time,
   peak RSS, API calls by endpoint against the minimum ceil(N/10000) + ceil(N/100).
b. The next day, 1% churn, refresh = "new": calls against the minimum
   ceil(N/10000) + ceil(new/100), wall time.
c. Simulated latency 30 ms (1M followers): wall time against the critical
   path, user/get paging: ceil(N/10000) x 30 ms, and against the fetches
   alone on this machine: benches/fetch_floor.rs, a client that only fetches
   (token, every page, every batchget answer read and thrown away) from the
   same simulator, which shares the cores.
d. The dedupe + audience + overlap step alone over the identities of (a),
   polars (benches/derive.rs: spilled and derived a bucket group at a time, as
   the job does, and all in memory) against DuckDB running sql/ over the same file.
e. The peer, side by side: bench/peer.py, the script a data engineer would
   write instead (wechatpy + pandas: iter_followers, get_batch 100 at a time on
   8 threads, dedupe on UnionID, Parquet), and unionsnap on the same simulator
   at 30 ms latency, 5 Official Accounts, BENCH_PEER_PEOPLE people (default
   100,000: 200k memberships), day 1 and day 2: both walls (whole processes),
   both call counts, the ratios, and whether both found the same people.
f. Small and medium jobs (20k and 200k memberships) at 30 ms: the day-2 wall
   (median of BENCH_SMALL_RUNS re-runs of the day) against its floor, the
   longest account's user/get chain plus one token (accounts are listed in
   parallel), and against that floor plus the batchget of the new followers
   of the last page, which can only go once that page has come; and against
   those fetches alone on this machine (benches/fetch_floor.rs, a whole
   process: token, the chains, that one batchget).
h. A year of history: a 20k-membership job (as f) run once a day for
   BENCH_HISTORY_DAYS days (default 365; each run a new date, the population
   churning 1% a day): the median wall of days 2 to 8 against that of the
   last 7 days (BENCH_SMALL_RUNS days each). The days go by in seconds, so
   the vacuum's retention is a second (a day's date leaves its journal at
   the next run, as it would a day later), and the Delta log keeps every
   entry (a real year keeps ~30 days of them past its checkpoints).
i. A website's login export read by the import: a CSV of BENCH_IMPORT_ROWS rows
   (default 4,000,000) over 1,000,000 users, then one of BENCH_IMPORT_GB GB
   (default 5; 0 skips it) over the same users: wall time and peak RSS, which
   grows with the distinct users, not the file.

The simulator runs as its own process, so the RSS measured is unionsnap's.
Environment: BENCH_PEOPLE (default 5,000,000: 10M followers), BENCH_LATENCY_PEOPLE
(default 500,000: 1M followers), BENCH_LATENCY_RUNS (runs of case c, default 3:
the median is reported), BENCH_SMALL_RUNS (day-2 runs of each size of case f,
default 7: the median is reported), BENCH_HISTORY_DAYS (case h, default 365),
BENCH_CASES (default abcdefhi; d needs a), BENCH_DIR
(default: a temp dir).
"""
import datetime
import functools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from simclient import call, committed, free_port, wait_for_simulator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("UNIONSNAP_BIN") or os.path.join(ROOT, "target", "release", "unionsnap")
ACCOUNTS = "a_oa:0.8,b_oa:0.6,c_oa:0.3,d_oa:0.2,e_oa:0.1"
DAY0, DAY1 = "2026-11-21", "2026-11-22"
API = """concurrency = {concurrency}
requests_per_second = 100000
"""


class Simulator:
    def __init__(self, workdir, people, latency="0ms"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = workdir
        os.makedirs(workdir, exist_ok=True)
        # A reused directory's job files are an earlier simulator's.
        for name in ("secrets.env", "job.toml"):
            if os.path.exists(os.path.join(workdir, name)):
                os.remove(os.path.join(workdir, name))
        self.proc = subprocess.Popen(
            [BIN, "simulate", "--addr", f"127.0.0.1:{self.port}", "--people", str(people),
             "--accounts", ACCOUNTS, "--leave-during-crawl", "0", "--daily-churn", "0.01",
             "--latency", latency, "--write-job", workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_simulator(self.proc, self.url, workdir)
        self.env = dict(os.environ)
        with open(os.path.join(workdir, "secrets.env")) as f:
            for line in f:
                line = line.strip()
                if line.startswith("export "):
                    key, value = line[len("export "):].split("=", 1)
                    self.env[key] = value.strip("'\"")
        self.env["RUST_LOG"] = "warn"

    def stats(self):
        return call(self.url + "/_sim/stats")

    def set_day(self, day):
        call(self.url + "/_sim/day", {"day": day})

    def job(self, concurrency):
        path = os.path.join(self.dir, "job.toml")
        text = open(path).read()
        # The simulator's job sets its own rate; the bench sets both keys.
        text = "\n".join(l for l in text.split("\n")
                         if not l.startswith(("requests_per_second", "concurrency")))
        text = text.replace("[api]\n", "[api]\n" + API.format(concurrency=concurrency), 1)
        bench_path = os.path.join(self.dir, "bench-job.toml")
        with open(bench_path, "w") as f:
            f.write(text)
        return bench_path

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def run(sim, job, date):
    """Runs `unionsnap run`; returns (seconds, peak RSS MiB, calls by endpoint)."""
    before = sim.stats()["ok_calls"]
    seconds, peak_mib = measured_run(job, date, sim.env)
    after = sim.stats()["ok_calls"]
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return seconds, peak_mib, calls


def measured_run(job, date, env):
    """Runs `unionsnap run`; returns (seconds, peak RSS MiB); exits on failure."""
    start = time.monotonic()
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([BIN, "run", job, "--date", date, "--log-format", "text"],
                            env=env, stderr=log, stdout=subprocess.DEVNULL)
    # Peak RSS: VmHWM of the process itself, read by a thread while this one
    # waits, so the wall time is exact (a polling loop would add up to its
    # interval to a run of a fraction of a second). getrusage's ru_maxrss
    # would also count the RSS this Python process had when it forked.
    peak_kib = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    peak_kib[0] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
            except (OSError, StopIteration):
                pass
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    proc.wait()
    seconds = time.monotonic() - start
    done.set()
    sampler.join()
    peak_kib = peak_kib[0]
    if proc.returncode != 0:
        log.seek(0)
        sys.exit(f"unionsnap run failed:\n{log.read().decode(errors='replace')[-4000:]}")
    return seconds, peak_kib / 1024


IMPORT_USERS = 1_000_000


def write_login_export(path, target_rows=None, target_bytes=None):
    """A login log: rows cycle over IMPORT_USERS users (a user logs in many
    times); a third have no UnionID. Returns (rows, bytes)."""
    line = [f"o{u:027d},{'' if u % 3 == 0 else f'u{u:027d}'},{1_700_000_000 + u}\n"
            for u in range(IMPORT_USERS)]
    rows = written = 0
    with open(path, "w") as f:
        f.write("openid,unionid,first_seen\n")
        block = "".join(line)
        while True:
            if target_rows is not None and rows + IMPORT_USERS > target_rows:
                rest = target_rows - rows
                f.write("".join(line[:rest]))
                rows += rest
                break
            f.write(block)
            rows += IMPORT_USERS
            written += len(block)
            if target_rows is not None and rows >= target_rows:
                break
            if target_bytes is not None and written >= target_bytes:
                break
    return rows, os.path.getsize(path)


def import_case(base, name, **target):
    work = os.path.join(base, "i", name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    export = os.path.join(work, "logins.csv")
    rows, size = write_login_export(export, **target)
    job = os.path.join(work, "job.toml")
    with open(job, "w") as f:
        f.write('name = "imports"\noutput = "warehouse"\n\n[[accounts]]\n'
                'id = "site"\nkind = "website"\nsource = "logins.csv"\n')
    env = dict(os.environ, RUST_LOG="warn")
    secs, rss = measured_run(job, DAY0, env)
    shutil.rmtree(work, ignore_errors=True)
    return (f"i. login export, {name}", f"{rows:,} rows, {size / 1e6:,.0f} MB, {IMPORT_USERS:,} users",
            f"{secs:.1f} s", f"{rss:,.0f} MiB", f"{rows / secs / 1e6:.1f} M rows/s")


def members(out, date):
    """Followers per account in the committed snapshot of `date` (a re-run
    of the date leaves the files it superseded until the vacuum)."""
    import duckdb
    files = committed(out, date, "followers")
    rows = duckdb.sql(f"""
        SELECT account_id, count(*) FROM read_parquet({files!r}, hive_partitioning = true)
        GROUP BY account_id ORDER BY account_id""").fetchall()
    return dict(rows)


def new_followers(out):
    import duckdb
    rows = duckdb.sql(f"""
        WITH d0 AS (SELECT account_id, openid FROM read_parquet('{out}/followers/snapshot_date={DAY0}/*/*.parquet', hive_partitioning = true)),
             d1 AS (SELECT account_id, openid FROM read_parquet('{out}/followers/snapshot_date={DAY1}/*/*.parquet', hive_partitioning = true))
        SELECT account_id, count(*) FROM d1 ANTI JOIN d0 USING (account_id, openid) GROUP BY account_id""").fetchall()
    return dict(rows)


def unique_people(out, date):
    import duckdb
    [audience] = committed(out, date, "audience")
    [(n,)] = duckdb.sql(f"SELECT unique_people FROM read_parquet('{audience}') "
                        "WHERE account_id = '*'").fetchall()
    return n


def peer_run(sim, out):
    """Runs bench/peer.py against `sim`; returns (seconds, calls, its JSON line)."""
    before = sim.stats()["ok_calls"]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "peer.py"), os.path.join(sim.dir, "job.toml"),
         os.path.join(sim.dir, "secrets.env"), sim.url, out],
        capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"the peer script (bench/peer.py) failed:\n{proc.stderr[-4000:]}")
    after = sim.stats()["ok_calls"]
    calls = sum(after.get(k, 0) - before.get(k, 0) for k in after)
    return seconds, calls, json.loads(proc.stdout.strip().splitlines()[-1])


def floor_seconds(m, latency=0.030):
    """The physical floor of a run: the longest account's user/get chain plus one token."""
    return (max(pages(v) for v in m.values()) + 1) * latency


def pages(n):
    # Full pages plus the short last one (or the empty call after an exact multiple).
    return n // 10000 + 1


@functools.cache
def fetch_floor_program():
    """The executable of benches/fetch_floor.rs, built once per bench run."""
    out = cargo(["bench", "--no-run", "--quiet", "--bench", "fetch_floor", "--message-format=json"])
    # The bench's own artifact: cargo also lists the unionsnap binary, which
    # it builds for benches, in whatever order the builds end.
    artifacts = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
    return next(a["executable"] for a in artifacts
                if a.get("executable") and a.get("target", {}).get("name") == "fetch_floor")


def fetch_floor(sim, job, profiles, runs):
    """benches/fetch_floor.rs against `sim`: the least any client must do
    (token, the user/get chains, the batchget answers read and thrown away),
    as a whole process timed like a run. Returns the median wall of `runs`."""
    program = fetch_floor_program()
    walls = []
    for _ in range(runs):
        start = time.monotonic()
        done = subprocess.run([program, job, "--profiles", profiles], env=sim.env,
                              capture_output=True, text=True)
        walls.append(time.monotonic() - start)
        if done.returncode != 0:
            sys.exit(f"benches/fetch_floor failed:\n{done.stderr[-4000:]}")
    return sorted(walls)[len(walls) // 2]


def duckdb_derive(identities):
    import duckdb
    con = duckdb.connect()
    con.execute("SET threads = 2")
    start = time.monotonic()
    con.execute(f"CREATE VIEW identities AS SELECT '{DAY0}'::DATE AS snapshot_date, * FROM read_parquet('{identities}')")
    con.execute("""CREATE TABLE people AS
        SELECT coalesce(unionid, concat(account_id, '/', member_id)) AS person_id, max(unionid) AS unionid,
               list(DISTINCT account_id ORDER BY account_id) AS accounts, count(DISTINCT account_id) AS n_accounts,
               min(joined_at) AS first_joined_at
        FROM identities GROUP BY 1""")
    for name in ("audience", "overlap"):
        sql = open(os.path.join(ROOT, "sql", f"{name}.sql")).read().rstrip().rstrip(";")
        con.execute(f"CREATE TABLE {name} AS {sql}")
    seconds = time.monotonic() - start
    unique = con.execute("SELECT unique_people FROM audience WHERE account_id = '*'").fetchone()[0]
    return seconds, unique


def cargo(args):
    """Runs cargo in the repository; returns its stdout, or exits saying why."""
    try:
        done = subprocess.run(["cargo", *args], cwd=ROOT, capture_output=True, text=True)
    except OSError as error:
        sys.exit(f"cargo {' '.join(args)} could not start: {error}")
    if done.returncode != 0:
        sys.exit(f"cargo {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def polars_derive(identities):
    out = cargo(["bench", "--quiet", "--bench", "derive", "--", identities])
    line = [l for l in out.splitlines() if l.startswith("{")][-1]
    return json.loads(line)


def history_case(base, days, runs):
    """Case h: the walls of a first week against those of the last, of a
    job run once a day for `days` days."""
    shutil.rmtree(os.path.join(base, "h"), ignore_errors=True)
    sim = Simulator(os.path.join(base, "h"), 10_000, latency="30ms")
    first = datetime.date.fromisoformat(DAY0)
    try:
        job = sim.job(concurrency=32)
        # The days go by in seconds: a retention of a second lets a day's
        # entry leave the vacuum's journal at the next run, as the default
        # 24 h does between two daily runs.
        sim.env["UNIONSNAP_VACUUM_RETENTION"] = "1s"
        walls = []
        for day in range(days):
            sim.set_day(day)
            walls.append(run(sim, job, str(first + datetime.timedelta(days=day)))[0])
        # Day 1 is a first snapshot; the next `runs` days, then the last `runs`.
        early, late = sorted(walls[1:1 + runs]), sorted(walls[-runs:])
        early_median, late_median = early[len(early) // 2], late[len(late) // 2]
        return ("h. a year of history", f"20k memberships, {days} daily snapshots",
                f"days 2-{runs + 1}: {early_median:.2f} s; days {days - runs + 1}-{days}: "
                f"{late_median:.2f} s (medians; day 100: {walls[min(99, days - 1)]:.2f} s)", "–",
                f"last week / first week: {late_median / early_median:.2f}")
    finally:
        sim.stop()


def main():
    people = int(os.environ.get("BENCH_PEOPLE", "5000000"))
    latency_people = int(os.environ.get("BENCH_LATENCY_PEOPLE", "500000"))
    latency_runs = int(os.environ.get("BENCH_LATENCY_RUNS", "3"))
    small_runs = int(os.environ.get("BENCH_SMALL_RUNS", "7"))
    cases = os.environ.get("BENCH_CASES", "abcdefhi")
    if "d" in cases and "a" not in cases:
        sys.exit("BENCH_CASES: case d reads the identities case a writes")
    base = os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="unionsnap-bench-")
    rows = []

    if "a" in cases:
        shutil.rmtree(os.path.join(base, "a"), ignore_errors=True)
        sim = Simulator(os.path.join(base, "a"), people)
        job = sim.job(concurrency=16)
        out = os.path.join(base, "a", "warehouse")
        try:
            secs, rss, calls = run(sim, job, DAY0)
            m = members(out, DAY0)
            n = sum(m.values())
            minimum = sum(pages(v) for v in m.values()) + sum(math.ceil(v / 100) for v in m.values())
            made = calls.get("/cgi-bin/user/get", 0) + calls.get("/cgi-bin/user/info/batchget", 0)
            rows.append(("a. first snapshot", f"{n:,} followers, 5 accounts", f"{secs:.1f} s",
                         f"{rss:,.0f} MiB", f"{made:,} calls (minimum {minimum:,}); {json.dumps(calls)}"))

            if "b" in cases:
                sim.set_day(1)
                secs, rss, calls = run(sim, job, DAY1)
                m1, new = members(out, DAY1), new_followers(out)
                minimum = sum(pages(v) for v in m1.values()) + sum(math.ceil(new.get(k, 0) / 100) for k in m1)
                made = calls.get("/cgi-bin/user/get", 0) + calls.get("/cgi-bin/user/info/batchget", 0)
                rows.append(("b. next day, 1% churn", f"{sum(m1.values()):,} followers, {sum(new.values()):,} new",
                             f"{secs:.1f} s", f"{rss:,.0f} MiB",
                             f"{made:,} calls (minimum {minimum:,}); {json.dumps(calls)}"))
        finally:
            sim.stop()

    if "d" in cases:
        [identities] = committed(out, DAY0, "identities")
        p = polars_derive(identities)
        d_secs, d_unique = duckdb_derive(identities)
        assert d_unique == p["unique_people"], (d_unique, p)
        rows.append(("d. dedupe+audience+overlap", f"{p['rows']:,} identity rows",
                     f"polars {p['seconds']:.2f} s ({p['groups']} bucket groups, spill included; "
                     f"all in memory {p['in_memory_seconds']:.2f} s)",
                     f"DuckDB {d_secs:.2f} s", f"ratio polars/DuckDB {p['seconds'] / d_secs:.2f}"))

    if "c" in cases:
        # Several runs, each a first snapshot into an empty warehouse: this
        # case is CPU-bound on two cores, and a shared machine's speed drifts.
        shutil.rmtree(os.path.join(base, "c"), ignore_errors=True)
        sim = Simulator(os.path.join(base, "c"), latency_people, latency="30ms")
        out = os.path.join(base, "c", "warehouse")
        try:
            job = sim.job(concurrency=128)
            times, peak = [], 0
            for _ in range(latency_runs):
                shutil.rmtree(out, ignore_errors=True)
                secs, rss, calls = run(sim, job, DAY0)
                times.append(secs)
                peak = max(peak, rss)
            m = members(out, DAY0)
            n = sum(m.values())
            secs = sorted(times)[len(times) // 2]
            per_account = max(pages(v) for v in m.values()) * 0.030
            total = math.ceil(n / 10000) * 0.030
            fetches = fetch_floor(sim, job, "all", latency_runs)
            rows.append(("c. latency 30 ms", f"{n:,} followers, 5 accounts",
                         f"{secs:.2f} s (median of {len(times)}: {', '.join(f'{t:.2f}' for t in times)})",
                         f"{peak:,.0f} MiB",
                         f"floor: the longest account's paging {per_account:.2f} s, ratio {secs / per_account:.2f} "
                         f"(goal 1.5); all accounts' paging summed {total:.1f} s (ratio {secs / total:.2f}); "
                         f"the fetches alone on this machine (benches/fetch_floor.rs) {fetches:.2f} s = "
                         f"{fetches / per_account:.2f}x the paging, unionsnap {secs / fetches:.2f}x them"))
        finally:
            sim.stop()

    if "e" in cases:
        shutil.rmtree(os.path.join(base, "e"), ignore_errors=True)
        peer_people = int(os.environ.get("BENCH_PEER_PEOPLE", "100000"))
        sim = Simulator(os.path.join(base, "e"), peer_people, latency="30ms")
        out = os.path.join(base, "e", "warehouse")
        try:
            job = sim.job(concurrency=32)
            for day, date in ((0, DAY0), (1, DAY1)):
                if day:
                    sim.set_day(1)
                secs, rss, calls = run(sim, job, date)
                ours = sum(calls.values())
                p_secs, p_calls, peer = peer_run(sim, os.path.join(base, "e", f"peer-{date}"))
                same = peer["people"] == unique_people(out, date)
                rows.append((f"e. peer, day {day + 1}", f"{sum(members(out, date).values()):,} memberships",
                             f"unionsnap {secs:.1f} s, {ours:,} calls",
                             f"wechatpy+pandas {p_secs:.1f} s, {p_calls:,} calls",
                             f"peer/unionsnap: {p_secs / secs:.1f}x the time, {p_calls / ours:.1f}x the calls; "
                             f"same people: {'yes' if same else 'NO'} ({peer['people']:,})"))
        finally:
            sim.stop()

    if "f" in cases:
        for people in (10_000, 100_000):
            name = f"f{people}"
            shutil.rmtree(os.path.join(base, name), ignore_errors=True)
            sim = Simulator(os.path.join(base, name), people, latency="30ms")
            out = os.path.join(base, name, "warehouse")
            try:
                job = sim.job(concurrency=32)
                day1, _, _ = run(sim, job, DAY0)
                sim.set_day(1)
                # Day 2 again and again (each run re-crawls the date and
                # commits it anew): a run of a fraction of a second moves
                # with the machine, the median does less.
                day2 = [run(sim, job, DAY1) for _ in range(small_runs)]
                walls = [d[0] for d in day2]
                secs = sorted(walls)[len(walls) // 2]
                rss = max(d[1] for d in day2)
                calls = day2[0][2]
                m = members(out, DAY1)
                floor = floor_seconds(m)
                # New followers listed on the last page are profiled after
                # it comes: one batchget after the chain, which no run of
                # a day with new followers avoids.
                profiled = calls.get("/cgi-bin/user/info/batchget", 0) > 0
                with_profiles = floor + (0.030 if profiled else 0)
                fetches = fetch_floor(sim, job, "last" if profiled else "none", small_runs)
                rows.append((f"f. day 2, {sum(m.values()):,} memberships", f"{len(m)} accounts, 30 ms",
                             f"{secs:.2f} s (median of {len(walls)}: {', '.join(f'{w:.2f}' for w in walls)}; "
                             f"day 1 {day1:.2f} s)", f"{rss:,.0f} MiB",
                             f"floor (longest chain + token) {floor:.2f} s: ratio {secs / floor:.2f} (goal 2); "
                             f"with the last page's batchget {with_profiles:.2f} s: ratio {secs / with_profiles:.2f}; "
                             f"those fetches alone on this machine (benches/fetch_floor.rs, a whole process) "
                             f"{fetches:.3f} s = {fetches / floor:.2f}x the floor, unionsnap {secs / fetches:.2f}x them; "
                             f"{sum(calls.values()):,} calls"))
            finally:
                sim.stop()

    if "h" in cases:
        rows.append(history_case(base, int(os.environ.get("BENCH_HISTORY_DAYS", "365")), small_runs))

    if "i" in cases:
        import_rows = int(os.environ.get("BENCH_IMPORT_ROWS", "4000000"))
        import_gb = float(os.environ.get("BENCH_IMPORT_GB", "5"))
        rows.append(import_case(base, "csv", target_rows=import_rows))
        if import_gb > 0:
            rows.append(import_case(base, f"{import_gb:g} GB", target_bytes=int(import_gb * 1e9)))

    print(f"\nunionsnap benchmark ({os.cpu_count()} cores), output under {base}\n")
    for row in rows:
        print(" | ".join(row))


if __name__ == "__main__":
    main()
