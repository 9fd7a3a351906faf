"""The meta-trained detector: detection episodes, the frame-level network's two paths (patches in training, every frame
of a long recording in detection) giving the same embeddings, ``train-detector`` with resume, and ``detect`` with
its weights under the protocol's rule."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fewshot_audio.cli import main
from fewshot_audio.detection.detectors import DEFAULT_DETECTOR, make_detector
from fewshot_audio.detection.meta import training_patches
from fewshot_audio.detection.metric import evaluate, read_predictions, read_references
from fewshot_audio.detection.network import PATCH, fine_tune, load_detector_network
from fewshot_audio.detection.settings import SHIPPED_WEIGHTS
from fewshot_audio.detection.sources import NetworkSource
from fewshot_audio.fewshot.episodes import DetectionEpisodeSampler
from fewshot_audio.models.backbones.frame_tcn import CONTEXT, FrameTCN
from fewshot_audio.models.checkpoints import load_checkpoint
from tests.detection.test_detect import write_recording, write_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A network meta-trained for a few steps on four fully annotated generated recordings."""
    root = tmp_path_factory.mktemp("train")
    for i in range(4):
        write_recording(root, f"train_{i}", seed=10 + i, n_events=22, seconds=26.0)
    out = tmp_path_factory.mktemp("run") / "protonet"
    assert main(["train-detector", str(root), "--out", str(out), "--episodes", "30", "--val-every", "10",
                 "--device", "cpu", "--quiet"]) == 0
    return root, out


def test_detection_episodes_pair_events_with_their_own_recordings_background():
    labels = torch.tensor([0] * 25 + [1] * 30 + [2] * 22 + [3] * 40 + [4] * 20 + [5] * 21 + [-1] * 3)
    sampler = DetectionEpisodeSampler(labels=labels, groups=[0, 2], group_names=["a", "b", "c"], n_shot=5, n_query=15,
                                      seed=3)
    ep = sampler.sample(200)
    assert ep.support.shape == (200, 2, 5) and ep.query.shape == (200, 2, 15)
    got_s, got_q = labels[ep.support], labels[ep.query]
    assert torch.equal(got_s[:, 0, :1].expand(-1, 5), got_s[:, 0]) and torch.equal(got_q[:, 1], got_s[:, 1, :1].expand(-1, 15))
    assert torch.equal(got_s[:, 1, 0], got_s[:, 0, 0] + 1)  # background of the same group
    assert set(got_s[:, 0, 0].tolist()) == {0, 4}  # group 1 (labels 2, 3) is not in this split
    for e in range(5):  # no window twice in an episode
        clips = torch.cat([ep.support[e].flatten(), ep.query[e].flatten()])
        assert clips.unique().numel() == clips.numel()
    again = DetectionEpisodeSampler(labels=labels, groups=[0, 2], group_names=["a", "b", "c"], n_shot=5, n_query=15,
                                    seed=3).sample(200)
    assert torch.equal(again.support, ep.support) and torch.equal(again.query, ep.query)


def test_training_patches_start_at_the_events_and_avoid_them_for_the_background(tmp_path):
    events = write_recording(tmp_path, "rec", seed=4, n_events=22, seconds=26.0)
    patches = training_patches(tmp_path, negatives=100, quiet=True)
    assert patches.groups == ["rec.wav (rec)"]
    assert (patches.labels == 0).sum() == 22 and (patches.labels == 1).sum() == 100
    assert patches.x.shape[1:] == (1, 64, PATCH + 2)
    mid = patches.x[:, 0, :, CONTEXT + 1 : CONTEXT + 5].mean(axis=(1, 2))  # the first half of each window
    assert mid[patches.labels == 0].min() > mid[patches.labels == 1].max() - 1e-3 or \
        np.median(mid[patches.labels == 0]) > np.percentile(mid[patches.labels == 1], 95)
    assert len(events) == 22


def test_the_network_embeds_a_long_recording_as_it_embeds_each_windows_patch(tmp_path, trained):
    _, out = trained
    y = 0.05 * np.random.default_rng(0).standard_normal(70 * 16000).astype(np.float32)  # 70 s: two 60 s blocks
    sf.write(tmp_path / "long.wav", y, 16000)
    examples = np.array([[1.0, 1.1], [2.0, 2.1]])
    src = NetworkSource(make_detector("protonet", weights=str(out / "detector.pt")).settings, examples)
    starts, rows = [], []
    for first, x in src.blocks(tmp_path / "long.wav"):
        starts.append(first)
        rows.append(x)
    x = np.concatenate(rows)
    assert len(starts) >= 2 and starts == list(np.cumsum([0] + [len(r) for r in rows[:-1]]))  # each continues the last
    from fewshot_audio.detection.frames import stream_frames

    frames = np.concatenate(list(stream_frames(tmp_path / "long.wav", src.spec))) - src.reference(tmp_path / "long.wav")
    assert len(x) == len(frames) - src.window + 1  # one window per frame, as the log-mel source numbers them
    padded = np.concatenate([np.zeros((CONTEXT, 64)), frames, np.zeros((CONTEXT, 64))]).astype(np.float32)
    net = load_detector_network(out / "detector.pt")
    for k in (0, 5, *starts[1:], *(s - 1 for s in starts[1:]), len(x) - 1):  # edges and both sides of block boundaries
        patch = torch.from_numpy(padded[k : k + src.window + 2 * CONTEXT].T.copy())[None, None]
        with torch.no_grad():
            want = net(patch)[0].numpy()
        np.testing.assert_allclose(x[k], want, atol=1e-4, rtol=1e-4)


def test_train_detector_writes_resumable_checkpoints_and_the_best_weights(trained, tmp_path):
    root, out = trained
    state = load_checkpoint(out / "detector.pt")
    assert state["groups"] == 4 and state["train_groups"] == 3 and 0 < state["step"] <= 30
    assert (out / "checkpoint.pt").exists() and load_checkpoint(out / "checkpoint.pt")["step"] == 30
    # resuming a run interrupted at step 20 ends where the uninterrupted one did
    part = tmp_path / "part"
    assert main(["train-detector", str(root), "--out", str(part), "--episodes", "20", "--val-every", "10",
                 "--device", "cpu", "--quiet"]) == 0
    assert main(["train-detector", str(root), "--out", str(part), "--episodes", "30", "--val-every", "10",
                 "--device", "cpu", "--quiet", "--resume"]) == 0
    a = load_checkpoint(out / "checkpoint.pt")["strategy"]["backbone"]
    b = load_checkpoint(part / "checkpoint.pt")["strategy"]["backbone"]
    for k in a:
        torch.testing.assert_close(a[k], b[k])


@pytest.mark.parametrize("detector", ["protonet", "protonet-lr", "protonet-tuned"])
def test_the_meta_trained_detectors_find_events_and_keep_the_protocols_rule(trained, tmp_path, detector):
    _, out = trained
    test = tmp_path / "test" / "SUB"
    test.mkdir(parents=True)
    events = write_recording(test, "rec", seed=21)
    cut = tmp_path / "cut" / "SUB"
    cut.mkdir(parents=True)
    (cut / "rec.wav").write_bytes((test / "rec.wav").read_bytes())
    write_table(cut / "rec.csv", "rec", events[:5])
    outs = []
    for folder in (test.parent, cut.parent):
        pred = tmp_path / f"{folder.name}.csv"
        assert main(["detect", str(folder), "--detector", detector, "--weights", str(out / "detector.pt"),
                     "--out", str(pred), "--quiet"]) == 0
        outs.append(pred.read_text())
    assert outs[0] == outs[1]
    f = evaluate(read_predictions(tmp_path / "test.csv"), read_references(test.parent))["overall_scores"]
    assert f["fmeasure (percentage)"] >= (60 if detector == "protonet" else 80)


def test_fine_tuning_changes_a_copy_and_leaves_the_meta_trained_network(trained):
    _, out = trained
    net = load_detector_network(out / "detector.pt")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    frames = np.random.default_rng(0).standard_normal((400, 64)).astype(np.float32)
    frames[[50, 120, 200, 260, 330]] += 5
    tuned = fine_tune(net, frames, np.array([48, 118, 198, 258, 328]), np.arange(0, 390, 3), 8, steps=5)
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert any(not torch.equal(v, tuned.state_dict()[k]) for k, v in net.state_dict().items())
    assert isinstance(tuned, FrameTCN) and not tuned.training


def test_the_shipped_network_is_the_one_its_notice_describes():
    state = load_checkpoint(SHIPPED_WEIGHTS)
    assert (state["step"], state["groups"], state["train_groups"], round(100 * state["val_accuracy"], 1)) == \
        (1200, 117, 99, 85.8)
    notice = (SHIPPED_WEIGHTS.parent / "NOTICE.md").read_text()
    assert "85.8% at step 1,200" in notice and "117 of them" in notice and "CC BY-SA 4.0" in notice
    net = load_detector_network(SHIPPED_WEIGHTS)
    assert sum(p.numel() for p in net.parameters()) == 99_136 and "99,136 parameters" in notice
    assert make_detector(DEFAULT_DETECTOR).settings.source == "network"
    assert NetworkSource.uses_weights and make_detector("protonet").settings.weights is None  # the shipped network


def test_weights_mistakes_are_one_line(trained, tmp_path, capsys):
    root, out = trained
    pred = str(tmp_path / "p.csv")
    assert main(["detect", str(root), "--detector", "shape", "--weights", str(out / "detector.pt"), "--out", pred]) == 2
    assert "uses no network" in capsys.readouterr().err
    assert main(["detect", str(root), "--detector", "protonet", "--weights", str(tmp_path / "nope.pt"), "--out", pred]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train-detector", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train-detector", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert "no annotation tables" in capsys.readouterr().err
    assert not Path(pred).exists()
