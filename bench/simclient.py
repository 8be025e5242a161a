"""What bench.py and soak.py share: a free port for the simulator, and a
JSON call to its API (`/_sim/stats`, `/_sim/day`, `/_sim/truth`)."""
import json
import socket
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


def committed(out, date, table):
    """The files of `table` in the committed snapshot of `date` (the marker
    names them: file names are unique to the run that wrote them)."""
    import os
    with open(os.path.join(out, "_manifests", f"snapshot_date={date}", "manifest.json")) as f:
        manifest = json.load(f)
    return [os.path.join(out, file["path"]) for file in manifest["files"] if file["table"] == table]
