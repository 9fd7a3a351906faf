"""Taggrams a person can open (issue 28: a 6,522-class model wrote 228,420-pixel-high images, a two-hour file a
157,675-pixel-wide one, and the time axis stopped short): bounded size, the right time axis, the top tags, a
spectrogram above them. (``tag --model``'s CSV and Raven table: tests/models/test_pretrained_models.py.)"""

import numpy as np
import pytest
import soundfile as sf

from fewshot_audio.cli import main
from fewshot_audio.tagging.results import TagResult
from fewshot_audio.tagging.taggram import MAX_COLUMNS, column_edges, pooled_scores, top_tags, write_taggram
from tests.conftest import write_tag_folders

SR = 16000


def _png_size(path):
    import matplotlib.image

    h, w = matplotlib.image.imread(str(path)).shape[:2]
    return w, h


def _result(path, n_windows: int, n_tags: int, *, hop: float):
    rng = np.random.default_rng(0)
    gram = rng.uniform(0, 0.3, (n_windows, n_tags)).astype(np.float32)
    gram[:, 7] += 0.6  # one tag that is clearly there
    tags = [f"class {j}" for j in range(n_tags)]
    return TagResult(str(path), [], dict(zip(tags, gram.mean(0).tolist())), dict.fromkeys(tags, 0.5), gram,
                     np.arange(n_windows) * hop), tags


def test_the_time_axis_runs_to_the_files_end():
    one = column_edges(np.array([0.0]), window=1.0, duration=0.4)  # a file shorter than one window
    assert one.tolist() == [0.0, 0.4]
    starts = np.arange(0, 20.5, 0.5)  # windows of 1 s every 0.5 s over a 21.2 s file: the last starts at 20.0
    edges = column_edges(starts, window=1.0, duration=21.2)
    assert edges[0] == 0 and edges[-1] == pytest.approx(21.0) and len(edges) == len(starts) + 1
    edges = column_edges(np.arange(0, 20.5, 0.5), window=1.0, duration=20.4)  # the last window ends past the file
    assert edges[-1] == pytest.approx(20.4)
    long = column_edges(np.arange(0, 7200, 0.5), window=1.0, duration=7200.3)  # two hours
    assert len(long) == MAX_COLUMNS + 1 and long[-1] == pytest.approx(7200.3)


def test_pooled_columns_keep_each_columns_highest_window():
    times = np.arange(5000) * 0.5
    values = np.zeros((5000, 2))
    values[1234, 0] = 9.0
    edges = column_edges(times, window=1.0, duration=2500.0)
    grid = pooled_scores(values, times, edges)
    assert grid.shape == (MAX_COLUMNS, 2) and np.nanmax(grid[:, 0]) == 9.0
    assert np.nanargmax(grid[:, 0]) == np.searchsorted(edges, times[1234], side="right") - 1


def test_a_huge_vocabulary_on_a_long_file_gives_an_image_of_bounded_size(tmp_path):
    audio = tmp_path / "long.wav"
    sf.write(audio, (0.01 * np.random.default_rng(1).standard_normal(SR * 600)).astype(np.float32), SR)
    result, tags = _result(audio, n_windows=400, n_tags=6522, hop=1.5)  # BirdNET-sized, 10 minutes
    assert top_tags(result, tags, n=3)[0] == "class 7"
    png = tmp_path / "g.png"
    write_taggram(png, result, tags, window=3.0, n_tags=20, calibrated=False)
    w, h = _png_size(png)
    assert w <= 1700 and h <= 1200, (w, h)
    header = png.with_suffix(".csv").read_text().splitlines()[0].split(",")
    assert header[0] == "time_s" and len(header) == 21 and header[1] == "class 7"


def test_tag_writes_a_taggram_with_its_top_tags_and_a_raven_table(tmp_path, capsys):
    support = write_tag_folders(tmp_path / "support", {"bell": ("struck", 1), "hiss": ("noise", 2)}, range(3), sr=SR)
    tagger = tmp_path / "t.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 0
    capsys.readouterr()
    clip = tmp_path / "c.wav"
    sf.write(clip, (0.1 * np.random.default_rng(0).standard_normal(int(SR * 21.2))).astype(np.float32), SR)
    png = tmp_path / "c.png"
    assert main(["tag", str(clip), str(clip), "--tagger", str(tagger), "--taggram", str(png), "--taggram-tags", "1",
                 "--quiet"]) == 0  # the same file twice is tagged once
    assert len(capsys.readouterr().out.splitlines()) == 1
    assert len(png.with_suffix(".csv").read_text().splitlines()[0].split(",")) == 2
    assert main(["tag", str(clip), "--tagger", str(tagger), "--taggram", str(tmp_path / "x.png"), "--taggram-tags",
                 "0"]) == 2
    assert "--taggram-tags 0: give 1 to 200" in capsys.readouterr().err
