"""compare on a small dataset: every data-size problem in one message before any work, with settings that
fit; a failed run does not claim --out; a test split no larger than the ways is said to be one."""

import yaml

from fewshot_audio.cli import main
from tests.conftest import write_tiny_dataset


def test_every_size_problem_in_one_message_with_settings_that_fit(tmp_path, tiny_config, capsys):
    data = write_tiny_dataset(tmp_path / "small", n_classes=8, n_clips=6)  # split 4 / 2 / 2 classes
    out = tmp_path / "cmp"
    rc = main(["compare", "--dataset", str(data), "--config", str(tiny_config), "--strategies", "prototypical",
               "--ways", "4", "--queries", "6", "--shots", "1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and not (out / "results.csv").exists()
    for part in ("the novel split has 2 classes but 4-way episodes need 4",
                 "the val split has 2 classes but 4-way episodes need 4",
                 "in the novel split 2 class(es) have fewer clips than the 7 that 1-shot 6-query episodes need",
                 "in the val split", "settings that fit this dataset: --ways 2, --queries 4"):
        assert part in err, (part, err)


def test_a_failed_run_does_not_claim_out_and_the_same_classes_are_said(tmp_path, tiny_config, tiny_dataset, capsys):
    out = tmp_path / "cmp"
    base = ["compare", "--dataset", str(tiny_dataset), "--config", str(tiny_config), "--strategies", "mfcc-1nn",
            "--shots", "1", "--out", str(out), "--quiet"]
    assert main([*base, "--queries", "50"]) == 2  # nothing fits: no result written
    capsys.readouterr()
    assert main(base) == 0  # another configuration, same --out: not locked by the failed run
    captured = capsys.readouterr()
    cfg = yaml.safe_load(tiny_config.read_text())
    assert cfg["ways"] == 3 and "every episode tests the same classes" in captured.err
    assert "every episode tests the same classes" in (out / "results.md").read_text()


def test_low_data_rows_that_learn_nothing_need_no_source(tmp_path, tiny_config, capsys, monkeypatch):
    """mfcc-1nn learns nothing from a source: with the built-in default source and a target of more classes
    than the built-in val split, it runs, and no feature store is built for the source."""
    monkeypatch.setenv("FEWSHOT_AUDIO_CACHE", str(tmp_path / "cache"))  # this test's stores only
    target = write_tiny_dataset(tmp_path / "target", n_classes=20, n_clips=4, seed=3)
    out = tmp_path / "low"
    assert main(["compare", "--dataset", str(target), "--config", str(tiny_config), "--protocol", "low-data",
                 "--strategies", "mfcc-1nn", "--shots", "1", "--draws", "2", "--out", str(out), "--quiet"]) == 0
    stores = [p.name for p in (tmp_path / "cache" / "features").glob("*.npy")]
    assert stores and all(name.startswith("target-") for name in stores), stores
    # a row that meta-trains still needs a source other than the target
    assert main(["compare", "--dataset", str(target), "--source", str(target), "--config", str(tiny_config),
                 "--protocol", "low-data", "--strategies", "mfcc-1nn,prototypical", "--shots", "1",
                 "--out", str(tmp_path / "low2"), "--quiet"]) == 2
    assert "meta-trains prototypical on a source dataset other than the target" in capsys.readouterr().err
