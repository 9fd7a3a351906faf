import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from fewshot_audio.metrics import average_precision, mean_ci95, multilabel_metrics, roc_auc


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
