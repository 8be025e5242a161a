"""What bench.py and soak.py share: a free port for the simulator, a JSON
call to its API (`/_sim/stats`, `/_sim/day`, `/_sim/truth`), and waiting
for it to be ready."""
import json
import os
import socket
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, body=None, timeout=600):
    """GET `url`, or POST `body` as JSON; the decoded answer (None when empty)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def wait_for_simulator(proc, url, workdir, seconds=600):
    """Waits until the simulator `proc` (started with `--write-job workdir`)
    answers at `url` and has written its job files. It answers first and
    writes them once its population is built: each file appears whole, and
    `secrets.env` last. Exits saying why if it stops or takes too long."""
    secrets = os.path.join(workdir, "secrets.env")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the simulator stopped (exit {proc.returncode}) before writing {secrets}")
        try:
            call(url + "/_sim/stats", timeout=120)
            if os.path.exists(secrets):
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"the simulator did not answer at {url} with its job files in {workdir} within {seconds} s")


def committed(out, date, table):
    """The files of `table` in the committed snapshot of `date` (the marker
    names them: file names are unique to the run that wrote them)."""
    import os
    with open(os.path.join(out, "_manifests", f"snapshot_date={date}", "manifest.json")) as f:
        manifest = json.load(f)
    return [os.path.join(out, file["path"]) for file in manifest["files"] if file["table"] == table]
