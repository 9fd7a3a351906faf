import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from benchmarks.common import multilabel_metrics
from fewshot_audio.fewshot.metrics import average_precision, mean_ci95, roc_auc


@pytest.mark.parametrize("seed", range(5))
def test_multilabel_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    targets = rng.random((60, 7)) < 0.3
    scores = targets * rng.normal(0.6, 0.3, targets.shape) + rng.normal(0, 0.4, targets.shape)
    scores[:10] = np.round(scores[:10], 1)  # ties
    for j in range(7):
        assert average_precision(scores[:, j], targets[:, j]) == pytest.approx(average_precision_score(targets[:, j], scores[:, j]))
        assert roc_auc(scores[:, j], targets[:, j]) == pytest.approx(roc_auc_score(targets[:, j], scores[:, j]))
    m = multilabel_metrics(scores, targets, thresholds=0.3)
    pred = scores >= 0.3
    assert m["micro_f1"] == pytest.approx(f1_score(targets, pred, average="micro"))
    assert m["macro_f1"] == pytest.approx(f1_score(targets, pred, average="macro", zero_division=np.nan))
    assert m["mAP"] == pytest.approx(average_precision_score(targets, scores, average="macro"))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(targets, scores, average="macro"))


def test_mean_ci95():
    v = np.array([0.5, 0.7, 0.9, 0.6])
    mean, ci = mean_ci95(v)
    assert mean == pytest.approx(0.675) and ci == pytest.approx(1.96 * v.std(ddof=1) / 2)
    assert mean_ci95([0.3]) == (0.3, 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_episode_metrics_match_scikit_learn_episode_by_episode(seed):
    import torch

    from fewshot_audio.fewshot.metrics import best_threshold, episode_average_precision, episode_f1, tag_probabilities

    rng = np.random.default_rng(seed)
    targets = rng.random((6, 15, 5)) < 0.35
    targets[:, 0, :] = True  # every way has a positive query
    scores = targets * rng.normal(1.0, 0.5, targets.shape) + rng.normal(0, 0.7, targets.shape)
    scores[:3] = np.round(scores[:3], 1)  # ties in half the episodes
    ap = episode_average_precision(torch.from_numpy(scores), torch.from_numpy(targets)).numpy()
    probs = tag_probabilities(torch.from_numpy(scores))
    assert torch.allclose(probs.sum(-1), torch.ones(6, 15))
    micro, macro = episode_f1(probs, torch.from_numpy(targets), 0.3)
    for e in range(6):
        assert ap[e] == pytest.approx(average_precision_score(targets[e], scores[e], average="macro"), abs=1e-6)
        pred = probs[e].numpy() >= 0.3
        assert float(micro[e]) == pytest.approx(f1_score(targets[e], pred, average="micro"), abs=1e-6)
        assert float(macro[e]) == pytest.approx(f1_score(targets[e], pred, average="macro", zero_division=0), abs=1e-6)
    grid = np.array([0.1, 0.3, 0.6])
    t = best_threshold(probs, torch.from_numpy(targets), grid=grid)
    best = max(grid, key=lambda g: float(episode_f1(probs, torch.from_numpy(targets), float(g))[0].mean()))
    assert t == best
