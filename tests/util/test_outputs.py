"""Outputs never replace a file without --overwrite, never replace a file of another kind, and follow the umask
(issue 28: each failed before)."""

import os
import stat

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.cli import main
from fewshot_audio.errors import ConfigError
from fewshot_audio.util.io import atomic_write_text, check_new_output, file_kind
from tests.conftest import write_tag_folders
from tests.detection.test_detect import write_recording

SR = 16000


@pytest.fixture(scope="module")
def support(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    write_tag_folders(root / "support", {"bell": ("struck", 1), "hiss": ("noise", 2)}, range(3), sr=SR)
    return root / "support"


def test_a_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x\n")
        os.umask(0o077)
        atomic_write_text(tmp_path / "b.txt", "x\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o600


def test_file_kinds_are_told_apart(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    (tmp_path / "z.pt").write_bytes(b"PK\x03\x04" + bytes(20))
    (tmp_path / "b.bin").write_bytes(bytes(range(256)))
    header = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
    (tmp_path / "s.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + bytes(4))
    kinds = {p.name: file_kind(p) for p in tmp_path.iterdir()}
    assert kinds == {"t.csv": "text", "p.png": "png", "z.pt": "zip", "b.bin": "binary", "s.safetensors": "safetensors"}


def test_an_existing_output_needs_overwrite_and_the_same_kind(tmp_path):
    target = tmp_path / "o.csv"
    check_new_output(target, kind="text", overwrite=False, param="out")  # absent: fine
    target.write_text("old\n")
    with pytest.raises(ConfigError, match=r"out=.*o.csv exists; choose another path or pass overwrite=True"):
        check_new_output(target, kind="text", overwrite=False, param="out")
    check_new_output(target, kind="text", overwrite=True, param="out")
    with pytest.raises(ConfigError, match=r"exists and is a text file; this writes a png file"):
        check_new_output(target, kind="png", overwrite=True, param="out")


def test_detect_refuses_to_replace_a_tagger_and_adapt_a_text_file(support, tmp_path, capsys):
    tagger = tmp_path / "precious.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 0
    assert stat.S_IMODE(tagger.stat().st_mode) == 0o666 & ~_umask()
    before = tagger.read_bytes()
    folder = tmp_path / "d"
    folder.mkdir()
    write_recording(folder, "r", seed=1)
    for overwrite in ([], ["--overwrite"]):
        assert main(["detect", str(folder), "--out", str(tagger), "--quiet", *overwrite]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("safetensors file" if overwrite else "exists") in err, err
    assert tagger.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    for overwrite in ([], ["--overwrite"]):
        assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(notes), "--quiet",
                     *overwrite]) == 2
        assert "notes.txt" in capsys.readouterr().err
    assert notes.read_text() == "my notes\n"
    # the same kind with --overwrite is replaced; without it, refused before any work
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 2
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet",
                 "--overwrite"]) == 0
    pred = tmp_path / "p.csv"
    assert main(["detect", str(folder), "--out", str(pred), "--quiet"]) == 0
    assert main(["detect", str(folder), "--out", str(pred), "--quiet"]) == 2
    assert main(["detect", str(folder), "--out", str(pred), "--quiet", "--overwrite"]) == 0


def test_tag_outputs_are_not_replaced_without_overwrite(support, tmp_path, capsys):
    tagger = tmp_path / "t.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 0
    clip = tmp_path / "c.wav"
    sf.write(clip, np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1, SR)
    for flag, name in (("--raven", "t.txt"), ("--taggram", "g.png")):
        out = tmp_path / name
        out.write_text("keep\n")
        assert main(["tag", str(clip), "--tagger", str(tagger), flag, str(out), "--quiet"]) == 2
        assert out.read_text() == "keep\n" and "exists" in capsys.readouterr().err


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
