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


def test_empty_csv_and_a_csv_of_missing_files(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "missing.csv").write_text("path,label\nnope.wav,a\nnope2.wav,b\n")
    assert main(["datasets", "inspect", str(tmp_path / "empty.csv")]) == 2
    assert "needs columns 'path' and 'label'" in capsys.readouterr().err
    assert main(["datasets", "inspect", str(tmp_path / "missing.csv")]) == 2
    assert "none of the 2 clips" in capsys.readouterr().err
