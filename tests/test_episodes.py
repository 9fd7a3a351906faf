import numpy as np
import pytest
import torch

from fewshot_audio.episodes import EpisodeSampler, load_split, make_split, read_episodes, freeze_episodes
from fewshot_audio.errors import EpisodeError


def make_sampler(seed=0, n_way=5, n_shot=3, n_query=4, counts=None):
    counts = counts or [10 + (c % 5) for c in range(20)]
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]
    return labels, EpisodeSampler(labels=labels, classes=list(range(0, 20, 2)), class_names=[f"c{i}" for i in range(20)],
                                  n_way=n_way, n_shot=n_shot, n_query=n_query, seed=seed)


def test_sampler_invariants():
    labels, s = make_sampler()
    ep = s.sample(200)
    assert ep.support.shape == (200, 5, 3) and ep.query.shape == (200, 5, 4)
    # every clip of way w belongs to class classes[w], and that class is in the sampler's split
    assert torch.equal(labels[ep.support], ep.classes.unsqueeze(-1).expand(-1, -1, 3))
    assert torch.equal(labels[ep.query], ep.classes.unsqueeze(-1).expand(-1, -1, 4))
    assert set(ep.classes.flatten().tolist()) <= set(range(0, 20, 2))
    for e in range(200):
        clips = torch.cat([ep.support[e].flatten(), ep.query[e].flatten()])
        assert len(set(clips.tolist())) == clips.numel(), "a clip appears twice in one episode"
        assert len(set(ep.classes[e].tolist())) == 5
    # all classes and many clips get used
    assert len(set(ep.classes.flatten().tolist())) == 10


def test_sampler_is_seeded():
    _, a = make_sampler(seed=1)
    _, b = make_sampler(seed=1)
    _, c = make_sampler(seed=2)
    ea, eb, ec = a.sample(5), b.sample(5), c.sample(5)
    assert torch.equal(ea.support, eb.support) and torch.equal(ea.query, eb.query)
    assert not torch.equal(ea.support, ec.support)


def test_sampler_state_roundtrip():
    _, a = make_sampler()
    a.sample(3)
    state = a.state()
    first = a.sample(2)
    a.set_state(state)
    assert torch.equal(a.sample(2).support, first.support)


@pytest.mark.parametrize("kw,msg", [
    (dict(n_way=11), "11-way episodes need 11 classes"),
    (dict(n_shot=0), "--shots must be a positive integer"),
    (dict(n_query=-1), "--queries must be a positive integer"),
    (dict(n_shot=5, n_query=8), "class 'c0' has 10 clips but 5-shot 8-query episodes need 13; lower --queries or drop "
                                "the class with --min-clips 13"),
])
def test_sampler_errors(kw, msg):
    with pytest.raises(EpisodeError, match=msg.replace("(", r"\(")):
        make_sampler(**kw)


def test_split_is_disjoint_and_seeded(tmp_path):
    classes = [f"k{i}" for i in range(50)]
    s = make_split(classes, ratios=[0.6, 0.2, 0.2], seed=0)
    assert sorted(s["base"] + s["val"] + s["novel"]) == sorted(classes)
    assert not set(s["base"]) & set(s["novel"]) and not set(s["val"]) & set(s["novel"])
    assert (len(s["base"]), len(s["val"]), len(s["novel"])) == (30, 10, 10)
    assert s == make_split(classes, ratios=[0.6, 0.2, 0.2], seed=0) != make_split(classes, ratios=[0.6, 0.2, 0.2], seed=1)
    bad = tmp_path / "split.yaml"
    bad.write_text("base: [k1, k2]\nnovel: [k2, k3]\n")
    with pytest.raises(EpisodeError, match="class 'k2' is in both base and novel"):
        load_split(bad, classes)
    bad.write_text("base: [k1]\nnovel: [zzz]\n")
    with pytest.raises(EpisodeError, match="class 'zzz'"):
        load_split(bad, classes)


def test_frozen_episodes_roundtrip_and_manifest_check(tmp_path):
    labels, s = make_sampler()
    ids = [f"clip{i}" for i in range(len(labels))]
    names = [f"c{i}" for i in range(20)]
    ep = s.sample(7)
    path = tmp_path / "e.json"
    freeze_episodes(path, episodes=ep, ids=ids, class_names=names, header={"manifest_hash": "abc", "ways": 5})
    back, header = read_episodes(path, manifest_hash="abc", ids=ids, class_names=names)
    assert torch.equal(back.support, ep.support) and torch.equal(back.query, ep.query)
    assert header["ways"] == 5 and header["n_episodes"] == 7
    # clip ids only, never indices: reordering the dataset keeps the same clips
    perm = np.random.default_rng(0).permutation(len(ids))
    ids2 = [ids[i] for i in perm]
    back2, _ = read_episodes(path, manifest_hash="abc", ids=ids2, class_names=names)
    assert [ids2[i] for i in back2.support.flatten().tolist()] == [ids[i] for i in ep.support.flatten().tolist()]
    with pytest.raises(EpisodeError, match="frozen from manifest abc but this dataset's manifest is xyz"):
        read_episodes(path, manifest_hash="xyz", ids=ids, class_names=names)
