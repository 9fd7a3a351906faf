"""The archive index end to end on generated audio: build, kill -9 and resume, incremental update, search by
example, ``index tag`` against ``tag``, and the one-line errors."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.archive.build import build_index
from fewshot_audio.archive.search import search
from fewshot_audio.archive.store import ArchiveStore
from fewshot_audio.archive.tag_from_index import tag_index
from fewshot_audio.cli import main
from fewshot_audio.errors import DataError

SR = 8000
F0 = {"low": 220.0, "mid": 660.0, "high": 1800.0}


def tone(f0: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * seconds)) / SR
    x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.01 * rng.standard_normal()) * t) * np.exp(-t / (0.3 + seconds))
    return (x + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def write_archive(root: Path, *, per_class: int = 6) -> Path:
    for c, f0 in F0.items():
        (root / c).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            sf.write(root / c / f"{c}{j}.wav", tone(f0, 0.4 + 0.35 * j, seed=hash((c, j)) % 1000), SR)
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An archive, its index on mfcc, and an mfcc tagger adapted on 1 s examples (so its window is the index's)."""
    root = tmp_path_factory.mktemp("ix")
    archive = write_archive(root / "archive")
    (archive / "broken.wav").write_bytes(b"RIFF0000WAVEjunk")
    for c, f0 in F0.items():
        (root / "support" / c).mkdir(parents=True)
        for j in range(3):
            sf.write(root / "support" / c / f"s{j}.wav", tone(f0, 1.0, seed=100 + j), SR)
    assert main(["adapt", "--support", str(root / "support"), "--backbone", "mfcc", "--out",
                 str(root / "t.safetensors"), "--quiet"]) == 0
    counts = build_index([archive], backbone="mfcc", out=root / "idx", files_per_shard=4, quiet=True)
    return root, archive, counts


def test_build_counts_and_layout(setup):
    root, archive, counts = setup
    assert counts["embedded"] == 19 and counts["unreadable"] == 1 and counts["unchanged"] == 0
    index = ArchiveStore.open(root / "idx")
    files = index.files()
    assert len(files) == 19 and sum(f[3] for f in files) == counts["windows"]
    assert [f[4] is not None for f in files].count(True) == 1  # broken.wav: recorded with its error
    emb, times = index.shard_arrays(next(f[1] for f in files if f[3]))
    assert emb.dtype == np.float16 and times.shape[1] == 3  # start, end, level (dB)
    # windows every half window (0.5 s), the last one ending at the file's end
    path, z, t, _, _ = next(r for r in index.windows_of_files() if r[0].endswith("high5.wav"))
    duration = sf.info(path).duration
    assert t[0, 0] == 0 and t[1, 0] == pytest.approx(0.5) and t[-1, 1] == pytest.approx(duration, abs=1e-3)


@pytest.mark.filterwarnings("error:The given NumPy array is not writable")  # issue 28: it leaked to users
def test_index_tag_agrees_with_tag(setup, capsys):
    root, archive, _ = setup
    files = sorted(str(p) for p in archive.rglob("*.wav"))
    # broken.wav cannot be read: both exit 1, after every other file's result
    assert main(["tag", *files, "--tagger", str(root / "t.safetensors"), "--json", "--quiet",
                 "--raven", str(root / "direct.txt")]) == 1
    direct = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    assert main(["index", "tag", str(root / "idx"), "--tagger", str(root / "t.safetensors"), "--json",
                 "--raven", str(root / "indexed.txt")]) == 1
    indexed = {r["path"]: r for r in json.loads(capsys.readouterr().out)}
    # Raven selection tables: the same windows, times and tags (scores to float16 precision: a row whose score is
    # within that precision of its tag's threshold may be in one table and not the other)
    a = [line.split("\t") for line in (root / "direct.txt").read_text().splitlines()]
    b = [line.split("\t") for line in (root / "indexed.txt").read_text().splitlines()]
    assert a[0] == b[0] and a[0][3:5] == ["Begin Time (s)", "End Time (s)"] and len(a) > 19

    def clear(rows):  # (times, band, file, offset, tag) of the rows clearly above their threshold
        return {tuple(r[3:10]) for r in rows[1:] if float(r[10]) - float(r[11]) > 2e-3}

    def every(rows):
        return {tuple(r[3:10]) for r in rows[1:]}

    assert clear(a) <= every(b) and clear(b) <= every(a) and len(clear(a)) >= len(a) - 1 - 3
    assert all(float(r[10]) >= float(r[11]) for r in a[1:])  # every row at or above its tag's threshold
    high5 = [r for r in a[1:] if r[7].endswith("high5.wav")]
    assert high5 and float(high5[-1][4]) - float(high5[-1][3]) <= 1.0 + 1e-3
    assert set(indexed) == set(direct)
    for path, r in direct.items():
        assert indexed[path]["tags"] == r["tags"], path
        assert (r["error"] is None) == (indexed[path]["error"] is None)
        for tag, score in r["scores"].items():
            assert indexed[path]["scores"][tag] == pytest.approx(score, abs=2e-3)  # float16 storage
    assert sum(r["tags"][:1] == [Path(p).parent.name] for p, r in direct.items() if not r["error"]) >= 15


def test_search_by_example_finds_the_same_class(setup, capsys):
    root, archive, _ = setup
    hits = search(root / "idx", [root / "support" / "mid" / "s0.wav", root / "support" / "mid" / "s1.wav"], k=8,
                  quiet=True)
    assert len(hits) == 8 and [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    assert sum(Path(h["path"]).parent.name == "mid" for h in hits) >= 7
    assert all(0 <= h["start"] < h["end"] for h in hits)
    assert main(["index", "search", str(root / "idx"), "--example", str(root / "support" / "low" / "s0.wav"),
                 "--k", "3", "--json", "--quiet"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert len(got) == 3 and set(got[0]) == {"path", "start", "end", "score"}


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path, setup):
    root, _, _ = setup
    archive = write_archive(tmp_path / "archive", per_class=14)
    out = tmp_path / "idx"
    cmd = [sys.executable, "-m", "fewshot_audio", "index", "build", str(archive), "--backbone", "mfcc", "--out",
           str(out), "--files-per-shard", "1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    committed = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            committed = sqlite3.connect(str(out / "index.sqlite")).execute("select count(*) from files").fetchone()[0]
        except sqlite3.Error:
            committed = 0
        if committed >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait() == -signal.SIGKILL, "the build finished before it could be killed"
    partial = ArchiveStore.open(out).files()
    assert 3 <= len(partial) < 42
    assert main(["index", "build", str(archive), "--backbone", "mfcc", "--out", str(out), "--quiet"]) == 2  # no --resume
    counts = build_index([archive], backbone="mfcc", out=out, files_per_shard=1, resume=True, quiet=True)
    assert counts["unchanged"] == len(partial) and counts["embedded"] == 42 - len(partial)
    fresh = tmp_path / "fresh"
    build_index([archive], backbone="mfcc", out=fresh, files_per_shard=7, quiet=True)
    a = {p: (z, t) for p, z, t, _, _ in ArchiveStore.open(out).windows_of_files()}
    b = {p: (z, t) for p, z, t, _, _ in ArchiveStore.open(fresh).windows_of_files()}
    assert set(a) == set(b) and len(a) == 42
    for p in a:
        assert np.array_equal(a[p][0], b[p][0]) and np.array_equal(a[p][1], b[p][1]), p
    named = ArchiveStore.open(out).shard_names()
    assert {f.name.split(".")[0] for f in (out / "shards").iterdir()} == named  # no orphan shard files left


def test_ctrl_c_keeps_every_file_embedded_so_far(tmp_path, setup, monkeypatch):
    """Issue 28: Ctrl-C in a build of a small archive kept nothing (shards of 256 files) although it said the last
    checkpoint was kept. Here the third group of files is interrupted."""
    from fewshot_audio.archive import build

    archive = write_archive(tmp_path / "archive", per_class=10)
    out = tmp_path / "idx"
    calls = {"n": 0}
    embed = build._Embedder.__call__

    def interrupted(self, group, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return embed(self, group, **kw)

    monkeypatch.setattr(build._Embedder, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_index([archive], backbone="mfcc", out=out, quiet=True)
    kept = ArchiveStore.open(out).files()
    assert len(kept) == 16  # two groups of eight, far fewer than a shard's 256
    monkeypatch.setattr(build._Embedder, "__call__", embed)
    counts = build_index([archive], backbone="mfcc", out=out, resume=True, quiet=True)
    assert counts["unchanged"] == 16 and counts["embedded"] == 30 - 16


def test_changed_archive_embeds_only_new_and_changed_files(tmp_path, setup):
    root, _, _ = setup
    archive = write_archive(tmp_path / "archive", per_class=3)
    out = tmp_path / "idx"
    build_index([archive], backbone="mfcc", out=out, quiet=True)
    time.sleep(0.01)
    sf.write(archive / "low" / "low0.wav", tone(F0["high"], 1.3, seed=7), SR)  # changed
    (archive / "mid" / "mid1.wav").unlink()  # deleted
    sf.write(archive / "mid" / "new.wav", tone(F0["mid"], 0.8, seed=8), SR)  # new
    counts = build_index([archive], backbone="mfcc", out=out, resume=True, quiet=True)
    assert (counts["embedded"], counts["unchanged"], counts["forgotten"]) == (2, 7, 1)
    fresh = tmp_path / "fresh"
    build_index([archive], backbone="mfcc", out=fresh, quiet=True)
    a, _ = tag_index(out, tagger=root / "t.safetensors")
    b, _ = tag_index(fresh, tagger=root / "t.safetensors")
    assert [(r.path, r.tags, r.scores) for r in a] == [(r.path, r.tags, r.scores) for r in b]


def test_bad_index_input_is_one_line(tmp_path, setup):
    root, archive, _ = setup

    def run(*args):
        r = subprocess.run([sys.executable, "-m", "fewshot_audio", *args], capture_output=True, text=True)
        return r.returncode, r.stderr.strip()

    rc, err = run("index", "search", str(tmp_path), "--example", str(archive / "low" / "low0.wav"))
    assert rc == 2 and err.count("\n") == 0 and "is not an index" in err
    # a tagger whose mfcc window (fitted to 0.4-2.2 s examples) is not the index's 1 s window
    assert main(["adapt", "--support", str(archive), "--backbone", "mfcc", "--out", str(tmp_path / "other.safetensors"),
                 "--quiet"]) == 0
    rc, err = run("index", "tag", str(root / "idx"), "--tagger", str(tmp_path / "other.safetensors"))
    assert rc == 2 and err.count("\n") == 0 and "built on another model than index" in err and "features.duration" in err
    rc, err = run("index", "build", str(archive), "--backbone", "mfcc", "--out", str(root / "idx"), "--resume",
                  "--hop", "0.25")
    assert rc == 2 and "was built with hop 0.5" in err
    rc, err = run("index", "build", str(archive), "--out", str(tmp_path / "x"), "--backbone", "nope")
    assert rc == 2 and "nope" in err
    (tmp_path / "afile").write_text("x")
    rc, err = run("index", "build", str(archive), "--out", str(tmp_path / "afile"), "--backbone", "mfcc")
    assert rc == 2 and err.count("\n") == 0 and "afile exists and is not an index" in err


def test_approximate_search_matches_exact_and_goes_stale_with_the_archive(tmp_path, setup, capsys):
    pytest.importorskip("usearch")
    from fewshot_audio.archive.ann import ann_ready

    root, _, _ = setup
    archive = write_archive(tmp_path / "archive", per_class=5)
    out = tmp_path / "idx"
    counts = build_index([archive], backbone="mfcc", out=out, ann="yes", quiet=True)
    assert counts["ann_windows"] == counts["windows"] and ann_ready(ArchiveStore.open(out))
    examples = [root / "support" / "high" / "s0.wav"]
    ranked = search(out, examples, k=20, method="exact", quiet=True)
    k = next(j for j in range(6, 20) if ranked[j - 1]["score"] > ranked[j]["score"] + 1e-3)  # no tie at the cut
    exact = ranked[:k]
    approx = search(out, examples, k=k, method="approximate", quiet=True)
    assert {(h["path"], h["start"]) for h in approx} == {(h["path"], h["start"]) for h in exact}
    assert [h["score"] for h in approx] == pytest.approx([h["score"] for h in exact], abs=2e-3)
    # the archive changes and the index is updated without a graph: search falls back to exact, and asking
    # for approximate search says why, in one line
    (archive / "high" / "high0.wav").unlink()
    assert build_index([archive], backbone="mfcc", out=out, resume=True, ann="no", quiet=True)["forgotten"] == 1
    assert not ann_ready(ArchiveStore.open(out))
    hits = search(out, examples, k=6, quiet=True)
    assert all(not h["path"].endswith("high0.wav") for h in hits)
    assert main(["index", "search", str(out), "--example", str(examples[0]), "--method", "approximate"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no up-to-date search graph" in err
    live = ArchiveStore.open(out).window_count()
    assert build_index([archive], backbone="mfcc", out=out, resume=True, ann="yes", quiet=True)["ann_windows"] == live
    assert ann_ready(ArchiveStore.open(out))
    approx = search(out, examples, k=6, method="approximate", quiet=True)
    assert all(not h["path"].endswith("high0.wav") for h in approx)


@pytest.mark.filterwarnings("error:The given NumPy array is not writable")  # issue 28: it leaked to users
def test_suggest_and_add_examples_fold_negatives_back_in(tmp_path, setup, capsys):
    """A class the tagger never saw (900 Hz, between 'mid' and 'high') is tagged falsely; labelling half of its
    falsely tagged files as negatives (read from the index) stops the other half being tagged, leaves the other
    tags untouched, and ``index suggest`` ranks as its method says, never suggesting a labelled file."""
    from fewshot_audio.tagging.tagger import Tagger

    root, _, _ = setup
    archive = write_archive(tmp_path / "archive", per_class=4)
    (archive / "other").mkdir()
    for j in range(12):
        sf.write(archive / "other" / f"o{j}.wav", tone(900.0, 0.6 + 0.1 * j, seed=500 + j), SR)
    out = tmp_path / "idx"
    build_index([archive], backbone="mfcc", out=out, quiet=True)
    tagger = tmp_path / "t.safetensors"
    tagger.write_bytes((root / "t.safetensors").read_bytes())

    def false_tags():
        results, _ = tag_index(out, tagger=tagger)
        return {r.path for r in results if "/other/" in r.path and r.tags}, {r.path: r.tags for r in results}

    wrong, before = false_tags()
    assert len(wrong) >= 4, "the unseen class should be tagged falsely at first"
    victim = max(("low", "mid", "high"), key=lambda t: sum(t in before[p] for p in wrong))
    wrong = sorted(p for p in wrong if victim in before[p])
    old = Tagger.load(tagger)
    # suggest: 'top' ranks by score, 'uncertain' by distance to the threshold
    assert main(["index", "suggest", str(out), "--tagger", str(tagger), "--tag", victim, "--k", "6", "--method", "top",
                 "--json"]) == 0
    top = json.loads(capsys.readouterr().out)
    assert len(top) == 6 and [s["score"] for s in top] == sorted((s["score"] for s in top), reverse=True)
    assert main(["index", "suggest", str(out), "--tagger", str(tagger), "--tag", victim, "--k", "6", "--json"]) == 0
    unsure = json.loads(capsys.readouterr().out)
    gaps = [abs(s["score"] - s["threshold"]) for s in unsure]
    assert gaps == sorted(gaps) and gaps[0] <= min(abs(s["score"] - s["threshold"]) for s in top)
    labelled, held = wrong[::2], wrong[1::2]
    assert main(["tagger", "add-examples", str(tagger), "--tag", victim, "--negative", *labelled, "--index",
                 str(out)]) == 0
    capsys.readouterr()
    new = Tagger.load(tagger)
    j = new.tags.index(victim)
    others = [k for k in range(len(new.tags)) if k != j]
    assert torch_equal(new.thresholds[others], old.thresholds[others]) and torch_equal(new.params[others], old.params[others])
    assert len(new.support_paths) == len(old.support_paths) + len(labelled)
    _, after = false_tags()
    assert sum(victim in after[p] for p in held) < len(held)
    assert sum(victim in after[p] for p in labelled) < len(labelled)
    # the files now labelled are not suggested again
    assert main(["index", "suggest", str(out), "--tagger", str(tagger), "--tag", victim, "--k", "50", "--json"]) == 0
    assert not set(labelled) & {s["path"] for s in json.loads(capsys.readouterr().out)}
    # bad input: one line each
    assert main(["tagger", "add-examples", str(tagger), "--tag", "nope", "--negative", labelled[0], "--index", str(out)]) == 2
    assert main(["tagger", "add-examples", str(tagger), "--tag", victim, "--positive", str(root / "support" / "low" / "s0.wav"),
                 "--index", str(out)]) == 2
    assert main(["index", "suggest", str(out), "--tagger", str(tagger), "--tag", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "'nope' is not in the tagger" in err[0] and "is not in it" in err[1] and "nope" in err[2]


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))


def test_torchrun_ranks_build_one_index(tmp_path, setup):
    """``torchrun --nproc-per-node 2 -m fewshot_audio index build``: each rank embeds every other file and commits
    its own shards into the one index, which holds every file once with the windows of a one-process build;
    a bad --out stops both ranks with one line."""
    root, _, _ = setup
    archive = write_archive(tmp_path / "archive", per_class=5)
    out = tmp_path / "idx"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29531", "-m",
           "fewshot_audio", "index", "build", str(archive), "--backbone", "mfcc", "--out", str(out),
           "--files-per-shard", "2", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "15 file(s) embedded" in r.stdout and "2 processes" in r.stdout and r.stdout.count("index ") == 1
    index = ArchiveStore.open(out)
    shards = len(index.shard_names())
    assert shards == 8  # 8 of one rank's files in 4 shards, 7 of the other's in 4
    fresh = tmp_path / "fresh"
    build_index([archive], backbone="mfcc", out=fresh, quiet=True)
    a = {p: (z, t) for p, z, t, _, _ in index.windows_of_files()}
    b = {p: (z, t) for p, z, t, _, _ in ArchiveStore.open(fresh).windows_of_files()}
    assert set(a) == set(b) and len(a) == 15
    for p in a:
        assert np.array_equal(a[p][0], b[p][0]) and np.array_equal(a[p][1], b[p][1]), p
    named = index.shard_names()
    assert {f.name.split(".")[0] for f in (out / "shards").iterdir()} == named
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # the index exists, no --resume
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode != 0 and len(errors) == 1 and "already holds an index" in errors[0]


def test_an_index_of_another_layout_version_is_refused_in_one_line(tmp_path, setup):
    """One layout version is read; an index written by another (levels missing, ...) is never half-read."""
    import shutil
    import sqlite3

    root, _, _ = setup
    old = tmp_path / "old"
    shutil.copytree(root / "idx", old)
    with sqlite3.connect(old / "index.sqlite") as db:
        db.execute("update meta set value = '0' where key = 'format'")
    with pytest.raises(DataError, match=r"index .*old has layout version 0; this toolkit reads version 1"):
        ArchiveStore.open(old)


def test_one_model_has_one_name_for_taggers_and_indexes(monkeypatch):
    """Issue 28: a tagger auto built on 'aisfx:embedding' was refused by an index built on 'aisfx'."""
    from types import SimpleNamespace

    import fewshot_audio.archive.store as store
    import fewshot_audio.models.pretrained  # noqa: F401  (registers the models)
    from fewshot_audio.specs import canonical_backbone

    assert canonical_backbone("aisfx:embedding") == canonical_backbone("aisfx") == "aisfx"
    assert canonical_backbone("musicnn-mtt:penultimate") == "musicnn-mtt:penultimate"
    assert canonical_backbone("mfcc") == "mfcc"
    monkeypatch.setattr(store, "model_fingerprint", lambda model: "w")  # the same weights
    monkeypatch.setattr(store, "asdict", lambda features: features)
    record = {"backbone": "aisfx:embedding", "input_shape": [1, 128, 199], "channels": 64}
    meta = {"model": {**record, "backbone": "aisfx"}, "features": {}, "weights": "w"}
    assert store.model_difference(meta, SimpleNamespace(record=record, features={}, model=None, name="aisfx")) == ""
    other = SimpleNamespace(record={**record, "backbone": "speech-embedding"}, features={}, model=None, name="x")
    assert "the index's 'aisfx'" in store.model_difference(meta, other)
