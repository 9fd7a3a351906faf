"""More mistakes a user makes on the command line: one line each, exit 2, no traceback."""

import pytest

from fewshot_audio.cli import main


@pytest.mark.parametrize(("argv", "message"), [
    (["episodes", "freeze", "--ways", "1"], "ways must be >= 2"),
    (["episodes", "freeze", "--shots", "0"], "shots must be a positive integer, got 0"),
    (["episodes", "freeze", "--episodes", "0"], "--episodes must be a positive integer, got 0"),
])
def test_episodes_freeze_checks_its_flags(argv, message, capsys, tmp_path):
    assert main([*argv, "--episodes-dir", str(tmp_path / "eps"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "eps").exists()


def test_inspect_names_its_path_argument(tmp_path, capsys):
    assert main(["datasets", "inspect", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert f"path {tmp_path / 'nowhere'} does not exist" in err and "--dataset" not in err


def test_empty_csv_and_a_csv_of_missing_files(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "missing.csv").write_text("path,label\nnope.wav,a\nnope2.wav,b\n")
    assert main(["datasets", "inspect", str(tmp_path / "empty.csv")]) == 2
    assert "needs columns 'path' and 'label'" in capsys.readouterr().err
    assert main(["datasets", "inspect", str(tmp_path / "missing.csv")]) == 2
    assert "none of the 2 clips" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["train", "--episodes", "1"],
    ["compare", "--strategies", "mfcc-1nn"],
    ["index", "build", "{wav}", "--backbone", "mfcc"],
])
def test_an_out_folder_that_cannot_be_made(argv, tmp_path, capsys):
    """--out where nothing can be written: one line before any work, not a FileNotFoundError traceback."""
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(8000, np.float32) + 0.1, 8000)
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    argv = [a.format(wav=tmp_path / "a.wav") for a in argv]
    for out in ("/proc/nope", str(blocker / "sub"), str(blocker)):
        assert main([*argv, "--out", out, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "--out" in err and err.count("\n") == 1, err


@pytest.mark.parametrize(("argv", "message"), [
    (["evaluate", "--run", "{tmp}/nowhere"], "nowhere is not a run folder"),
    (["compare", "--shots", "0", "--out", "{tmp}/o"], "--shots [0]: must be positive integers"),
    (["compare", "--strategies", "nope", "--out", "{tmp}/o"], "unknown strategy 'nope'"),
    (["tag", "{tmp}/x.wav", "--model", "nope"], "unknown pretrained model 'nope'"),
    (["weights", "fetch", "nope"], "unknown pretrained weights 'nope'"),
    (["tagger", "info", "{tmp}/missing.safetensors"], "missing.safetensors does not exist"),
    (["tagger", "info", "{tmp}/bad.csv"], "bad.csv is not a readable tagger file"),
    (["train", "--config", "{tmp}/nope.yaml", "--out", "{tmp}/o"], "nope.yaml does not exist"),
    (["adapt", "--support", "{tmp}/bad.csv", "--out", "{tmp}/t.safetensors"], "needs columns 'path' and 'label'"),
    (["train", "--device", "tpu", "--out", "{tmp}/o"], "device 'tpu' is not valid"),
])
def test_more_mistakes_are_one_line(argv, message, tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    sf.write(tmp_path / "x.wav", np.zeros(8000, np.float32), 8000)
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists() and not (tmp_path / "t.safetensors").exists()


def test_compare_names_the_test_fold_flag(tmp_path, capsys):
    """The library names test_fold; the command says the flag that set it (cli.flags, as for every parameter)."""
    from tests.conftest import write_tiny_dataset

    data = write_tiny_dataset(tmp_path / "data", n_classes=3, n_clips=4, seconds=0.25)
    assert main(["compare", "--protocol", "low-data", "--dataset", str(data), "--strategies", "mfcc-1nn", "--shots",
                 "1", "--test-fold", "f9", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--test-fold f9 was given but this dataset has no folds" in err
