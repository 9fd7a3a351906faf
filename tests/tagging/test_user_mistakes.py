"""What a new user ran into with adapt and tag: every mistake is one line with the right exit status, output
paths are checked before the work, and a tagger that cannot work says so."""

import json
import os

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.cli import main
from tests.conftest import synthetic_clip, write_tag_folders

SR = 16000
TAGS = {"bell": ("struck", 1), "hiss": ("noise", 2), "sweep": ("chirp", 3)}


def clip(family, index, j, seconds=1.0):
    return synthetic_clip(family, index, j, seconds=seconds, sr=SR)


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistakes")
    write_tag_folders(root / "support", TAGS, range(4), sr=SR)
    write_tag_folders(root / "one", TAGS, range(1), sr=SR)
    (root / "a").mkdir()
    (root / "b").mkdir()
    sf.write(root / "a" / "x.wav", clip("struck", 1, 9), SR)
    sf.write(root / "b" / "x.wav", clip("chirp", 3, 9), SR)
    sf.write(root / "long.wav", np.concatenate([clip("struck", 1, 8, 1.0)] * 4), SR)
    (root / "fake.wav").write_text("this is not audio\n")
    (root / "others").mkdir()  # five sound families outside the vocabulary, three clips each
    for fam, idx in (("harmonic", 9), ("modulated", 7), ("plucked", 4), ("noise", 5), ("chirp", 6)):
        for j in range(3):
            sf.write(root / "others" / f"{fam}{j}.wav", clip(fam, idx, j), SR)
    return root


@pytest.fixture(scope="module")
def tagger(audio, tmp_path_factory):
    out = tmp_path_factory.mktemp("t") / "t.safetensors"
    assert main(["adapt", "--support", str(audio / "support"), "--backbone", "mfcc", "--out", str(out), "--quiet"]) == 0
    return out


def run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("hop", ["-1", "0", "nan", "inf", "1e30"])
def test_bad_hop_is_one_line_before_any_work(audio, tagger, capsys, tmp_path, hop):
    rc, out, err = run(capsys, "tag", str(audio / "long.wav"), "--tagger", str(tagger), "--hop", hop,
                       "--taggram", str(tmp_path / "g.png"), "--quiet")
    assert rc == 2 and err.strip().count("\n") == 0 and f"--hop {float(hop)}: must be a positive number of seconds" in err
    assert out == "" and not (tmp_path / "g.png").exists()


def test_output_paths_are_checked_before_the_work(audio, tagger, capsys, tmp_path):
    rc, out, err = run(capsys, "tag", str(audio / "long.wav"), "--tagger", str(tagger), "--taggram", "/proc/nope.png")
    assert rc == 2 and "--taggram /proc/nope.png" in err and out == ""
    rc, out, err = run(capsys, "tag", str(audio / "long.wav"), "--tagger", str(tagger), "--raven",
                       str(tmp_path / "no_such_folder" / "r.txt"))
    assert rc == 2 and "--raven" in err and "does not exist" in err and out == ""
    rc, out, err = run(capsys, "tag", str(audio / "long.wav"), "--tagger", str(tagger), "--top-k", "0")
    assert rc == 2 and "--top-k must be >= 1" in err


def test_taggrams_of_files_with_the_same_name(audio, tagger, capsys, tmp_path):
    a, b = str(audio / "a" / "x.wav"), str(audio / "b" / "x.wav")
    rc, out, err = run(capsys, "tag", a, b, "--tagger", str(tagger), "--taggram", str(tmp_path / "one.png"))
    assert rc == 2 and "names one PNG but 2 files are tagged" in err and not (tmp_path / "one.png").exists()
    rc, out, err = run(capsys, "tag", a, b, "--tagger", str(tagger), "--taggram", str(tmp_path / "grams"), "--quiet")
    assert rc == 0 and sorted(p.name for p in (tmp_path / "grams").glob("*.png")) == ["x-2.png", "x.png"]


def test_exit_status_says_whether_every_file_was_tagged(audio, tagger, capsys):
    rc, out, err = run(capsys, "tag", str(audio / "fake.wav"), "--tagger", str(tagger), "--quiet")
    assert rc == 1 and "cannot decode" in out and "1 of 1 file(s) could not be read" in err
    rc, out, err = run(capsys, "tag", str(audio / "fake.wav"), str(audio / "a" / "x.wav"), "--tagger", str(tagger),
                       "--json", "--quiet")
    results = json.loads(out)
    assert rc == 1 and results[1]["error"] is None and results[1]["scores"]
    rc, out, err = run(capsys, "tag", str(audio / "a" / "x.wav"), "--tagger", str(tagger), "--quiet")
    assert rc == 0


def test_json_gives_each_tags_threshold(audio, tagger, capsys):
    rc, out, _ = run(capsys, "tag", str(audio / "a" / "x.wav"), "--tagger", str(tagger), "--json", "--quiet")
    r = json.loads(out)[0]
    assert rc == 0 and set(r["thresholds"]) == set(TAGS) and all(-1 <= v <= 1 for v in r["scores"].values())


def test_adapt_names_its_own_flag(capsys, tmp_path):
    rc, _, err = run(capsys, "adapt", "--support", str(tmp_path / "no_such_folder"), "--backbone", "mfcc",
                     "--out", str(tmp_path / "t.safetensors"))
    assert rc == 2 and "--support" in err and "--dataset" not in err and err.count("\n") == 1
    rc, _, err = run(capsys, "adapt", "--support", str(tmp_path), "--backbone", "mfcc", "--out",
                     str(tmp_path / "nope" / "t.safetensors"))
    assert rc == 2 and "--out" in err


def test_one_tag_needs_negatives(audio, capsys, tmp_path):
    one = tmp_path / "bell_only"
    (one / "bell").mkdir(parents=True)
    for f in (audio / "support" / "bell").iterdir():
        (one / "bell" / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "bell.safetensors"
    rc, _, err = run(capsys, "adapt", "--support", str(one), "--backbone", "mfcc", "--out", str(out))
    assert rc == 2 and "--negatives" in err and err.count("\n") == 1 and not out.exists()
    negatives = [str(audio / "support" / "hiss"), str(audio / "support" / "sweep")]
    rc, printed, err = run(capsys, "adapt", "--support", str(one), "--backbone", "mfcc", "--negatives", *negatives,
                           "--out", str(out), "--quiet")
    assert rc == 0 and "8 negative clips" in printed
    rc, printed, _ = run(capsys, "tag", str(audio / "others"), "--tagger", str(out), "--json", "--quiet")
    rejected = np.mean([not r["tags"] for r in json.loads(printed)])
    assert rejected >= 0.5, f"only {rejected:.0%} of unrelated clips rejected"  # without negatives: 0%


def test_few_examples_warn_and_info_shows_leave_one_out_recall(audio, capsys, tmp_path):
    out = tmp_path / "one.safetensors"
    rc, printed, err = run(capsys, "adapt", "--support", str(audio / "one"), "--backbone", "mfcc", "--out", str(out))
    assert rc == 0 and "fewer than 3 examples" in err and "leave-one-out recall" in printed
    rc, printed, _ = run(capsys, "tagger", "info", str(out))
    assert rc == 0 and printed.count("leave-one-out recall n/a (one example)") == 3 and "  1 example " in printed


def test_a_tagger_file_cut_short(tagger, capsys, tmp_path, audio):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(tagger.read_bytes()[: os.path.getsize(tagger) // 2])
    rc, _, err = run(capsys, "tag", str(audio / "a" / "x.wav"), "--tagger", str(cut))
    assert rc == 2 and "is not a readable tagger file" in err and err.count("\n") == 1
