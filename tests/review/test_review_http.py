"""The review server over HTTP: the token, no path in any request, 127.0.0.1 only, a missing file never stops it,
decisions and undo written at once, and Ctrl-C's closing line."""

import csv
import json
import socket
import urllib.error
import urllib.request

import pytest
from review_helpers import Server, write_detections


def get(url: str, data: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=None if data is None else json.dumps(data).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("review")
    source = write_detections(root)
    rows = json.loads(source.read_text())
    rows.append({"file": "gone.wav", "class": "beep", "start": 0.0, "end": 0.5, "score": 0.01})
    source.write_text(json.dumps(rows))
    s = Server(source, root / "labels.csv")
    yield s, root
    if s.proc.poll() is None:
        s.kill()


def test_every_request_needs_the_token(server):
    s, _ = server
    for path in ("/", "/api/state", "/audio/0", "/spectrogram/0", "/static/review.js"):
        assert get(s.base + path)[0] == 403
        assert get(s.base + path + "?token=wrong")[0] == 403
    status, body = get(f"{s.base}/api/state?token={s.token}")
    assert status == 200 and json.loads(body)["total"] == 11


def test_no_request_reaches_a_path(server):
    s, root = server
    t = f"token={s.token}"
    for path in ("/audio/..%2F..%2Fetc%2Fpasswd", "/audio/%2Fetc%2Fpasswd", "/spectrogram/-1", "/audio/99",
                 "/static/..%2Fserver.py", "/static/%2Fetc%2Fpasswd", "/static/index.html", "/audio/0.5",
                 "/../../etc/passwd", "/api/item/..%2F1"):
        assert get(f"{s.base}{path}?{t}")[0] == 404, path
    status, body = get(f"{s.base}/audio/0?{t}")
    assert status == 200 and body[:4] == b"RIFF"
    status, body = get(f"{s.base}/spectrogram/0?{t}")
    assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_file_is_shown_and_the_server_goes_on(server):
    s, _ = server
    t = f"token={s.token}"
    item = json.loads(get(f"{s.base}/api/item/10?{t}")[1])
    assert item["missing"] is True and item["file"] == "gone.wav"
    status, body = get(f"{s.base}/audio/10?{t}")
    assert status == 404 and b"gone.wav" in body
    assert get(f"{s.base}/api/state?{t}")[0] == 200 and s.proc.poll() is None


def test_it_listens_on_127_0_0_1_only(server):
    s, _ = server
    assert s.base.startswith("http://127.0.0.1:")
    port = int(s.base.rsplit(":", 1)[1])
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outward interface
        outward = probe.getsockname()[0]
    except OSError:
        outward = None
    finally:
        probe.close()
    if not outward or outward.startswith("127."):
        pytest.skip("this machine has no address other than loopback to try")
    with pytest.raises(OSError):
        socket.create_connection((outward, port), timeout=3).close()


def test_decisions_and_undo_are_written_at_once_then_ctrl_c_says_where(server):
    s, root = server
    t = f"token={s.token}"
    for n, label in ((0, "positive"), (1, "negative"), (2, "uncertain")):
        assert get(f"{s.base}/api/decide?{t}", {"item": n, "label": label})[0] == 200
    assert get(f"{s.base}/api/decide?{t}", {"item": 0, "label": "maybe"})[0] == 400
    undone = json.loads(get(f"{s.base}/api/undo?{t}", {})[1])
    assert undone["undone"] == 2 and undone["current"] == 2
    with open(root / "labels.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["item"], r["label"]) for r in rows] == [("0", "positive"), ("1", "negative")]
    assert {"path", "start", "end", "tag", "score", "label", "reviewed_at"} <= set(rows[0])
    err = s.stop()
    assert "reviewed 2 of 11 items; labels in" in err and "Traceback" not in err
