"""The contract every registered strategy keeps, and MAML's inner loop checked by hand."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fewshot_audio.fewshot.dataset import DeviceData
from fewshot_audio.fewshot.episodes import EpisodeSampler
from fewshot_audio.fewshot.harness import evaluate
from fewshot_audio.fewshot.metrics import episode_accuracies
from fewshot_audio.fewshot.strategies import STRATEGIES, strategy_class
from fewshot_audio.fewshot.strategies.maml import MAML
from fewshot_audio.models.backbones import build_backbone

N_CLASSES, PER_CLASS, SHAPE = 16, 12, (1, 16, 20)


def easy_features(seed=0):
    """Class c is a bright band around mel bin c plus noise: trivially separable, even for unseen classes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.0, (N_CLASSES * PER_CLASS, *SHAPE)).astype(np.float32)
    labels = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    for i, c in enumerate(labels):
        x[i, 0, c] += 6.0
        x[i, 0, (c + 5) % 16] += 3.0
    return x, torch.from_numpy(labels)


def build(name, seed=0):
    cls = strategy_class(name)
    torch.manual_seed(seed)
    backbone = build_backbone(cls.backbone_name or "conv4", input_shape=SHAPE, channels=8)
    return cls(backbone=backbone, device=torch.device("cpu"), lr=3e-3, n_classes=N_CLASSES, n_way=3, episodes=20,
               seed=seed)


def run(name, seed=0):
    x, labels = easy_features()
    data = DeviceData(x, device=torch.device("cpu"), crop=SHAPE[-1], seed=seed)
    names = [str(c) for c in range(N_CLASSES)]
    base, novel = list(range(0, 10)), list(range(10, 16))
    s = build(name, seed)
    idx = torch.nonzero(torch.isin(labels, torch.tensor(base))).flatten()
    s.prepare(data.eval_inputs(idx))
    if s.trains:
        sampler = EpisodeSampler(labels=labels, classes=base, class_names=names, n_way=3, n_shot=2, n_query=3, seed=seed)
        for _ in range(20):
            s.train_mode(True)
            ep = sampler.sample(1)
            loss, acc = s.train_step(data.inputs(ep.support, train=True), data.inputs(ep.query, train=True), ep.classes)
            assert loss.ndim == 0 and torch.isfinite(loss)
    eps = EpisodeSampler(labels=labels, classes=novel, class_names=names, n_way=3, n_shot=2, n_query=3, seed=99).sample(12)
    s.train_mode(False)
    with torch.no_grad():
        scores = s.score_episodes(data.eval_inputs, eps.support, eps.query)
    return s, data, eps, scores


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_strategy_contract(name):
    s, data, eps, scores = run(name)
    assert scores.shape == (12, 9, 3) and torch.isfinite(scores).all()
    acc = episode_accuracies(scores, 3).mean().item()
    assert acc > 0.6, f"{name}: {acc:.2f} on a trivially easy task (chance 0.33)"
    # fit / predict on one episode agrees with the batched path
    y = torch.arange(3).repeat_interleave(2)
    s.fit(data.eval_inputs(eps.support[0].flatten()), y)
    with torch.no_grad():
        single = s.predict(data.eval_inputs(eps.query[0].flatten()))
    assert single.shape == (9, 3)
    assert torch.equal(single.argmax(-1), scores[0].argmax(-1))
    # deterministic under a seed
    _, _, _, again = run(name)
    assert torch.allclose(scores, again, atol=1e-5)
    # the harness drives it the same way as every other strategy
    assert evaluate(s, data, eps).shape == (12,)


def test_maml_inner_step_matches_hand_computed_gradient():
    torch.manual_seed(0)

    class Identity(torch.nn.Module):
        embedding_dim = 4
        input_kind = "logmel"

        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return self.scale * x

    s = MAML(backbone=Identity(), device=torch.device("cpu"), n_way=3)
    with torch.no_grad():
        s.head.weight.copy_(torch.randn(3, 4))
        s.head.bias.copy_(torch.randn(3))
    x, y = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 2])
    params = s.parameters_dict()
    adapted = s.adapt(params, x, y, steps=1, create_graph=False)
    # by hand: softmax cross-entropy gradient of a linear layer
    W, b = s.head.weight.detach(), s.head.bias.detach()
    p = torch.softmax(x @ W.T + b, dim=-1)
    delta = (p - F.one_hot(y, 3).float()) / len(y)
    expect_W = W - s.inner_lr * delta.T @ x
    expect_b = b - s.inner_lr * delta.sum(0)
    expect_scale = 1.0 - s.inner_lr * float((delta * (x @ W.T)).sum())
    assert torch.allclose(adapted["head.weight"], expect_W, atol=1e-6)
    assert torch.allclose(adapted["head.bias"], expect_b, atol=1e-6)
    assert abs(float(adapted["backbone.scale"].detach()) - expect_scale) < 1e-6
    # the second-order outer gradient (through the inner step) differs from the first-order one
    xq, yq = torch.randn(6, 4), torch.tensor([2, 1, 0, 2, 1, 0])

    def outer_grad(create_graph):
        a = s.adapt(params, x, y, steps=1, create_graph=create_graph)
        return torch.autograd.grad(F.cross_entropy(s.logits(a, s.features(a, xq)), yq), params["head.weight"])[0]

    assert not torch.allclose(outer_grad(True), outer_grad(False), atol=1e-6)


def test_anil_adapts_only_the_head():
    s = build("anil")
    x, labels = easy_features()
    params = s.parameters_dict()
    adapted = s.adapt(params, torch.from_numpy(x[:6]), torch.tensor([0, 0, 1, 1, 2, 2]), steps=2, create_graph=False)
    for k, v in params.items():
        assert (adapted[k] is v) == (not k.startswith("head.")), k


@pytest.mark.parametrize("name", ["regularized-sbcnn", "transfer-finetune"])
def test_per_task_training_works_under_autocast(name):
    """Evaluation runs under bf16 autocast on GPUs; fits inside it must not read stale cached weights."""
    x, labels = easy_features()
    data = DeviceData(x, device=torch.device("cpu"), crop=SHAPE[-1])
    eps = EpisodeSampler(labels=labels, classes=list(range(10, 16)), class_names=[str(c) for c in range(16)],
                         n_way=3, n_shot=2, n_query=3, seed=99).sample(12)
    s = build(name)
    idx = torch.arange(len(labels))[labels < 10]
    s.prepare(data.eval_inputs(idx))
    s.train_mode(False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        scores = s.score_episodes(data.eval_inputs, eps.support, eps.query)
    assert episode_accuracies(scores.float(), 3).mean() > 0.6


def test_initial_weights_do_not_depend_on_what_ran_before():
    """compare builds strategies one after another; each one's initialisation must depend on the seed only."""
    from fewshot_audio.config import TrainConfig
    from fewshot_audio.fewshot.build import build_strategy

    cfg = TrainConfig(channels=8, strategy="regularized-sbcnn")
    a = build_strategy(cfg, torch.device("cpu"))
    torch.rand(1000)  # other work consumes the global random stream
    b = build_strategy(cfg, torch.device("cpu"))
    for (k, v), w in zip(a.backbone.state_dict().items(), b.backbone.state_dict().values()):
        assert torch.equal(v, w), k


def test_multi_label_loss_is_cross_entropy_for_one_tag_and_spreads_over_several():
    import torch.nn.functional as F

    from fewshot_audio.fewshot.strategies.base import classification_loss, hit_rate, way_targets

    logits = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    one_hot = F.one_hot(y, 4).float()
    assert torch.allclose(classification_loss(logits, one_hot), F.cross_entropy(logits, y))
    assert hit_rate(logits, one_hot) == hit_rate(logits, y)
    two = one_hot.clone()
    two[0, 3] = 1.0  # clip 0 carries tags 0 and 3: its target is half on each
    want = -(0.5 * F.log_softmax(logits[0], -1)[[0, 3]]).sum()
    rows = [-(F.log_softmax(logits[i], -1)[y[i]]) for i in range(1, 8)]
    assert torch.allclose(classification_loss(logits, two), (want + sum(rows)) / 8)
    best = logits.argmax(-1)
    assert hit_rate(logits, two) == pytest.approx(float(((best == y) | ((torch.arange(8) == 0) & (best == 3))).float().mean()))
    assert torch.equal(way_targets((2, 3, 2), None, torch.device("cpu")), torch.tensor([0, 0, 1, 1, 2, 2] * 2))
    t = torch.rand(2, 3, 2, 3)
    assert torch.equal(way_targets((2, 3, 2), t, torch.device("cpu")), t.reshape(12, 3))


@pytest.mark.parametrize("name", ["prototypical", "transfer-proto", "proto-transfer", "maml", "anil"])
def test_multi_label_train_step_uses_the_targets(name):
    """A train step on multi-label targets gives a different loss than on the single-label ones, and each
    trainable strategy takes it without error."""
    g = torch.Generator().manual_seed(0)
    support, query = torch.randn(1, 3, 2, *SHAPE, generator=g), torch.randn(1, 3, 2, *SHAPE, generator=g)
    classes = torch.tensor([[0, 1, 2]])
    st = torch.eye(3)[None, :, None, :].expand(1, 3, 2, 3).clone()  # one-hot: the single-label targets
    same, _ = build(name).train_step(support, query, classes, targets=(st, st.clone()))
    single, _ = build(name).train_step(support, query, classes)
    assert torch.allclose(same, single, atol=1e-5)
    qt = st.clone()
    qt[0, 0, 0, 2] = qt[0, 1, 1, 0] = 1.0  # two queries carry a second tag
    multi, _ = build(name).train_step(support, query, classes, targets=(st, qt))
    assert torch.isfinite(multi) and not torch.isclose(single, multi)


def test_mfcc_1nn_measures_raw_statistics_and_mfcc_svm_z_scores_them():
    """The paper's MFCC baseline: 1-NN between the raw statistics (z-scoring them lost to the whole-clip recipe on
    real sets: docs/results.md); the SVM keeps its z-scoring."""
    x, _ = easy_features()
    inputs = torch.from_numpy(x[:40])
    nn1, svm = build("mfcc-1nn"), build("mfcc-svm")
    nn1.prepare(inputs)
    svm.prepare(inputs)
    assert torch.equal(nn1.backbone.mean, torch.zeros_like(nn1.backbone.mean))
    assert torch.equal(nn1.backbone.std, torch.ones_like(nn1.backbone.std))
    z = svm.backbone(inputs)
    assert torch.allclose(z.mean(0), torch.zeros(z.shape[1]), atol=1e-4) and not torch.equal(svm.backbone.std,
                                                                                            torch.ones_like(svm.backbone.std))
