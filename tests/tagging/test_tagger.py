"""Adapt and tag end to end on generated audio."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from fewshot_audio.cli import main
from fewshot_audio.errors import CheckpointError, DataError
from fewshot_audio.tagging.calibration import calibrate_threshold
from fewshot_audio.tagging.tagger import Tagger
from tests.conftest import synthetic_clip, write_tag_folders

SR = 16000


def clip(family, index, j, seed=0, seconds=1.0):
    return synthetic_clip(family, index, j, seed=seed, seconds=seconds, sr=SR)


TAGS = {"bell": ("struck", 1), "hiss": ("noise", 2), "sweep": ("chirp", 3), "string": ("plucked", 4)}


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    root = tmp_path_factory.mktemp("tagging")
    write_tag_folders(root / "support", TAGS, range(5), sr=SR)
    write_tag_folders(root / "new", TAGS, range(5, 11), sr=SR)
    (root / "unseen").mkdir()
    for j in range(10):  # a class outside the vocabulary: a harmonic timbre
        sf.write(root / "unseen" / f"{j}.wav", clip("modulated", 7, j), SR)
    (root / "extra").mkdir()
    for j in range(5):
        sf.write(root / "extra" / f"{j}.wav", clip("harmonic", 9, j), SR)
    long = np.concatenate([clip("struck", 1, 0), np.zeros(SR, np.float32), clip("chirp", 3, 0)])  # support clips
    sf.write(root / "long.wav", long, SR)
    return root


@pytest.mark.parametrize("head", ["prototypes", "linear"])
def test_adapt_tag_reject_and_roundtrip(audio, tmp_path, head):
    tagger = Tagger.adapt(audio / "support", backbone="mfcc", head=head, quiet=True)
    assert tagger.tags == sorted(TAGS) and tagger.support_targets.sum(0).tolist() == [5, 5, 5, 5]
    results = tagger.tag([audio / "new"], quiet=True)
    truth = [r.path.split("/")[-2] for r in results]
    top = [max(r.scores, key=r.scores.get) for r in results]
    accuracy = np.mean([t == p for t, p in zip(truth, top)])
    recall = np.mean([t in r.tags for t, r in zip(truth, results)])
    # MFCC statistics are a weak embedding on pitch-randomised sounds; chance is 25%
    assert accuracy >= 0.7 and recall >= 0.6, (accuracy, recall)
    # save / load gives identical scores
    path = tmp_path / "t.safetensors"
    tagger.save(path)
    loaded = Tagger.load(path)
    again = loaded.tag([audio / "new"], quiet=True)
    for a, b in zip(again, results):  # equal up to float32 rounding of kernels on differently aligned memory
        assert a.scores.keys() == b.scores.keys()
        assert np.allclose(list(a.scores.values()), list(b.scores.values()), rtol=1e-6, atol=1e-6)
        assert a.tags == b.tags


def test_add_and_remove_tag_leave_other_tags_unchanged(audio, tmp_path):
    tagger = Tagger.adapt(audio / "support", backbone="mfcc", quiet=True)
    before = tagger.tag([audio / "new"], quiet=True)
    thresholds = tagger.thresholds.clone()
    tagger.add_tag("tone", [audio / "extra"], quiet=True)
    assert tagger.tags[-1] == "tone" and torch.equal(tagger.thresholds[:4], thresholds)
    after = tagger.tag([audio / "new"], quiet=True)
    for b, a in zip(before, after):
        assert all(a.scores[t] == b.scores[t] for t in TAGS)
    with pytest.raises(Exception, match="already in the tagger"):
        tagger.add_tag("tone", [audio / "extra"], quiet=True)
    tagger.remove_tag("hiss")
    assert tagger.tags == ["bell", "string", "sweep", "tone"]
    removed = tagger.tag([audio / "new"], quiet=True)
    for b, a in zip(before, removed):
        assert all(a.scores[t] == b.scores[t] for t in ("bell", "string", "sweep"))


def test_cli_adapt_tag_taggram_and_errors(audio, tmp_path, capsys):
    out = tmp_path / "tagger.safetensors"
    assert main(["adapt", "--support", str(audio / "support"), "--backbone", "mfcc", "--out", str(out), "--quiet"]) == 0
    assert "4 tags from 20 files" in capsys.readouterr().out
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    assert main(["tag", str(audio / "long.wav"), str(tmp_path / "bad.wav"), "--tagger", str(out), "--json",
                 "--taggram", str(tmp_path / "grams"), "--hop", "0.5", "--quiet"]) == 1  # bad.wav: exit 1
    res = json.loads(capsys.readouterr().out)
    assert res[1]["error"] and "bad.wav" in res[1]["error"] and res[0]["error"] is None
    assert res[0]["tags"] and set(res[0]["tags"]) <= set(TAGS)  # the file's tags come from its pooled (clip) score
    gram = (tmp_path / "grams" / "long.csv").read_text().splitlines()
    header = gram[0].split(",")  # the shown tags, best first
    assert header[0] == "time_s" and sorted(header[1:]) == ["bell", "hiss", "string", "sweep"] and len(gram) - 1 == 5
    rows = np.array([[float(v) for v in line.split(",")] for line in gram[1:]])
    assert rows[:, 0].tolist() == [0.0, 0.5, 1.0, 1.5, 2.0]
    col = {t: j + 1 for j, t in enumerate(header[1:])}
    assert rows[:, col["bell"]].argmax() == 0 and rows[:, col["sweep"]].argmax() == 4  # time-resolved: bell at 0 s, sweep at 2 s
    assert (tmp_path / "grams" / "long.png").stat().st_size > 1000 and not (tmp_path / "grams" / "bad.png").exists()
    assert main(["tag", str(audio / "new" / "bell"), "--tagger", str(out), "--csv", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "path,bell,hiss,string,sweep,tags,error" and len(lines) == 7
    assert main(["tagger", "add-tag", str(out), "--tag", "tone", "--examples", str(audio / "extra"), "--quiet"]) == 0
    assert main(["tagger", "info", str(out)]) == 0
    assert "tone" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert main(["tag", str(tmp_path / "empty"), "--tagger", str(out), "--quiet"]) == 2
    assert main(["tag", str(audio / "long.wav"), "--tagger", str(out), "--backbone", "conv4", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no audio files found" in err and "built on backbone 'mfcc', not 'conv4'" in err


def test_bad_tagger_inputs(audio, tmp_path):
    sup = tmp_path / "sup"
    (sup / "a").mkdir(parents=True)
    (sup / "b").mkdir()
    sf.write(sup / "a" / "x.wav", clip("struck", 1, 0), SR)
    with pytest.raises(DataError, match="tag 'b' has no examples"):
        Tagger.adapt(sup, backbone="mfcc", quiet=True)
    tagger = Tagger.adapt(audio / "support", backbone="mfcc", quiet=True)
    path = tmp_path / "t.safetensors"
    tagger.save(path)
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["fewshot_audio"])
    meta["format_version"] = 99
    save_file(load_file(str(path)), str(tmp_path / "old.safetensors"), metadata={"fewshot_audio": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="format version 99"):
        Tagger.load(tmp_path / "old.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable tagger file"):
        Tagger.load(tmp_path / "junk.safetensors")


def test_tagger_on_a_trained_run_backbone(tmp_path, tiny_dataset, tiny_config, audio):
    from fewshot_audio.config import load_config
    from fewshot_audio.fewshot.training import train

    cfg = load_config(tiny_config)
    cfg.dataset, cfg.out = str(tiny_dataset), str(tmp_path / "run")
    train(cfg, quiet=True)
    tagger = Tagger.adapt(audio / "support", backbone=str(tmp_path / "run"), quiet=True)
    assert tagger.backbone.name == "conv4@run" and tagger.backbone.window == 0.5
    tagger.save(tmp_path / "t.safetensors")
    a = tagger.tag([audio / "long.wav"], quiet=True)[0]
    b = Tagger.load(tmp_path / "t.safetensors").tag([audio / "long.wav"], quiet=True)[0]
    assert a.scores == b.scores and a.taggram.shape == (11, 4)  # 3 s in 0.5 s windows every 0.25 s

    # the tagger and the run record the model (name, input shape, channels), not the training config
    path = tmp_path / "t.safetensors"
    with safe_open(str(path), framework="pt") as fh:
        meta = json.loads(fh.metadata()["fewshot_audio"])
    assert meta["format_version"] == 3 and meta["model"]["backbone"] == "conv4" and "backbone_config" not in meta
    assert json.loads((tmp_path / "run" / "model.json").read_text())["model"] == meta["model"]

    # a feature setting this version does not know (one removed since the file was written) is dropped, not fatal
    meta["features"]["removed_setting"] = 1
    save_file(load_file(str(path)), str(tmp_path / "future.safetensors"), metadata={"fewshot_audio": json.dumps(meta)})
    assert Tagger.load(tmp_path / "future.safetensors").tag([audio / "long.wav"], quiet=True)[0].scores == a.scores

    # one format version is read: an older one is refused with one line (never migrated)
    old = {**meta, "format_version": 2}
    save_file(load_file(str(path)), str(tmp_path / "v2.safetensors"), metadata={"fewshot_audio": json.dumps(old)})
    with pytest.raises(CheckpointError, match="format version 2 .*this toolkit reads version 3"):
        Tagger.load(tmp_path / "v2.safetensors")

    # the run folder is adapted from its model.json: a config.yaml this version could not read does not matter
    (tmp_path / "run" / "config.yaml").write_text("no_such_field: 1\n")
    again = Tagger.adapt(audio / "support", backbone=str(tmp_path / "run"), quiet=True)
    assert again.tag([audio / "long.wav"], quiet=True)[0].scores == a.scores


def test_calibrate_threshold():
    assert calibrate_threshold([5, 6, 7], [1, 2, 3]) == pytest.approx(4.0)
    assert calibrate_threshold([5, 6], []) == 5
    t = calibrate_threshold([1, 5, 6], [2, 3, 4])
    assert 4 < t < 5
    # weight 1 (balanced accuracy) keeps every positive at the cost of one negative in three; weight 2 makes that
    # false acceptance cost more than the two positives it loses
    assert calibrate_threshold([3, 4, 6, 7], [1, 2, 5]) == pytest.approx(2.5)
    assert calibrate_threshold([3, 4, 6, 7], [1, 2, 5], false_accept_weight=2.0) == pytest.approx(5.5)
    rng = np.random.default_rng(0)
    for _ in range(50):  # a larger false-acceptance weight never lowers the threshold
        pos, neg = rng.normal(1, 1, 3), rng.normal(0, 1, 20)
        ts = [calibrate_threshold(pos, neg, false_accept_weight=w) for w in (0.5, 1, 2, 8, 40)]
        assert ts == sorted(ts)


def test_strictness_raises_thresholds_is_saved_and_checked(audio, tmp_path, capsys):
    liberal = Tagger.adapt(audio / "support", backbone="mfcc", strictness=0.25, quiet=True)  # = balanced accuracy
    strict = Tagger.adapt(audio / "support", backbone="mfcc", quiet=True)
    assert strict.strictness == 2.0 and bool((strict.thresholds >= liberal.thresholds).all())
    assert bool((strict.thresholds > liberal.thresholds).any())  # on this support set it changes a threshold
    def rejected(t):
        return np.mean([not r.tags for r in t.tag([audio / "unseen"], quiet=True)])
    assert rejected(strict) >= rejected(liberal)
    strict.save(tmp_path / "s.safetensors")
    loaded = Tagger.load(tmp_path / "s.safetensors")
    assert loaded.strictness == 2.0
    out = tmp_path / "t.safetensors"
    assert main(["adapt", "--support", str(audio / "support"), "--backbone", "mfcc", "--out", str(out),
                 "--strictness", "0", "--quiet"]) == 2
    assert "--strictness 0.0: must be > 0" in capsys.readouterr().err and not out.exists()
