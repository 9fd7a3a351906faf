import numpy as np
import pytest
import torch

from fewshot_audio.errors import EpisodeError
from fewshot_audio.fewshot.episodes import EpisodeSampler, freeze_episodes, load_split, make_split, read_episodes


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
    (dict(n_shot=0), "shots=0: must be a positive integer"),
    (dict(n_query=-1), "queries=-1: must be a positive integer"),
    (dict(n_shot=5, n_query=8), "class 'c0' has 10 clips but 5-shot 8-query episodes need 13; lower queries= or drop "
                                "the class with min_clips=13"),
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


def test_multilabel_sampler_restricts_targets_to_the_episode():
    from fewshot_audio.fewshot.episodes import MultiLabelEpisodeSampler

    g = torch.Generator().manual_seed(0)
    targets = torch.rand(300, 8, generator=g) < 0.25
    s = MultiLabelEpisodeSampler(targets=targets, tags=list(range(8)), tag_names=[f"t{i}" for i in range(8)],
                                 n_way=4, n_shot=2, n_query=3, seed=1)
    ep = s.sample(20)
    assert ep.support.shape == (20, 4, 2) and ep.query.shape == (20, 4, 3)
    assert ep.support_targets.shape == (20, 4, 2, 4) and ep.query_targets.shape == (20, 4, 3, 4)
    for e in range(20):
        clips = torch.cat([ep.support[e].flatten(), ep.query[e].flatten()])
        assert clips.unique().numel() == clips.numel()
        for w in range(4):
            for k in range(2):
                c = ep.support[e, w, k]
                assert ep.support_targets[e, w, k, w]  # drawn for tag w, so positive for it
                assert torch.equal(ep.support_targets[e, w, k], targets[c, ep.classes[e]])
    assert any(ep.query_targets[e].sum(-1).max() > 1 for e in range(20)), "no multi-label clip was ever drawn"
    again = MultiLabelEpisodeSampler(targets=targets, tags=list(range(8)), tag_names=[f"t{i}" for i in range(8)],
                                     n_way=4, n_shot=2, n_query=3, seed=1).sample(20)
    assert torch.equal(again.support, ep.support)
    with pytest.raises(EpisodeError, match="tag 't0' has"):
        MultiLabelEpisodeSampler(targets=targets[:10], tags=[0, 1], tag_names=["t0", "t1"], n_way=2, n_shot=5, n_query=5)


def test_mtt_adapter(tmp_path):
    import soundfile as sf

    from fewshot_audio.data import build_manifest, detect_format

    (tmp_path / "mtt" / "0").mkdir(parents=True)
    sf.write(tmp_path / "mtt" / "0" / "a.mp3", np.zeros(8000, dtype=np.float32) + 0.1, 16000, format="MP3")
    rows = ["clip_id\tguitar\trock\tpiano\tmp3_path", "2\t1\t1\t0\t0/a.mp3", "6\t0\t0\t0\t0/b.mp3",
            "9\t0\t1\t1\t0/c.mp3"]
    (tmp_path / "mtt" / "annotations_final.csv").write_text("\n".join(rows) + "\n")
    assert detect_format(tmp_path / "mtt") == "mtt"
    m = build_manifest(tmp_path / "mtt")
    assert [c.labels for c in m.clips] == [("guitar", "rock"), (), ("rock", "piano")]
    assert m.clips[0].path.endswith("0/a.mp3")


def test_device_data_memory_mapped_fallback_gives_the_same_inputs(tmp_path):
    from fewshot_audio.fewshot.dataset import DeviceData

    arr = np.random.default_rng(0).standard_normal((50, 1, 8, 20)).astype(np.float32)
    np.save(tmp_path / "a.npy", arr)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    resident = DeviceData(mm, device=torch.device("cpu"), crop=12, seed=3)
    mapped = DeviceData(mm, device=torch.device("cpu"), crop=12, seed=3, memory_fraction=0.0)
    assert resident.resident and not mapped.resident
    idx = torch.tensor([[7, 3, 3], [49, 0, 12]])
    assert torch.equal(resident.inputs(idx), mapped.inputs(idx))
    assert torch.equal(resident.inputs(idx, train=True), mapped.inputs(idx, train=True))
    assert mapped.inputs(idx).shape == (2, 3, 1, 8, 12)
    assert torch.equal(resident.inputs(idx)[1, 0], torch.from_numpy(arr[49, :, :, 4:16]))
    # prefetched batches are picked up by the inputs() call with the same index tensor, in any order
    a, b = torch.tensor([[1, 2], [3, 4]]), torch.tensor([[5, 5, 40]])
    mapped.prefetch(a, b)
    assert len(mapped._ahead) == 2
    assert torch.equal(mapped.inputs(b), resident.inputs(b)) and len(mapped._ahead) == 1
    assert torch.equal(mapped.inputs(a, train=True), resident.inputs(a, train=True)) and not mapped._ahead
    resident.prefetch(a)  # a no-op when the features are resident
    assert not resident._ahead


def test_sampler_cost_does_not_grow_with_the_dataset_and_large_draws_stay_uniform():
    """Beyond DENSE_LIMIT classes or clips per class the sampler draws indices directly (with redraws):
    episodes stay valid (distinct classes, distinct clips of the right class) and uniform."""
    from fewshot_audio.fewshot.episodes import DENSE_LIMIT

    n_cls, per_class = DENSE_LIMIT + 44, 3 * DENSE_LIMIT  # both paths beyond the limit
    labels = torch.arange(n_cls * per_class) % n_cls
    s = EpisodeSampler(labels=labels, classes=list(range(n_cls)), class_names=[str(c) for c in range(n_cls)],
                       n_way=5, n_shot=2, n_query=3, seed=1)
    ep = s.sample(4000)
    assert ep.support.shape == (4000, 5, 2) and ep.query.shape == (4000, 5, 3)
    assert all(len(set(row.tolist())) == 5 for row in ep.classes[:200])
    clips = torch.cat([ep.support, ep.query], -1)  # (E, W, 5)
    assert torch.equal(labels[clips], ep.classes.unsqueeze(-1).expand_as(clips))
    assert all(len(set(row.tolist())) == 5 for row in clips.view(-1, 5)[:2000])
    # uniform: every class chosen ~ 4000*5/300 = 66.7 times, every clip position ~ uniform within its class
    class_counts = torch.bincount(ep.classes.flatten(), minlength=n_cls).float()
    assert class_counts.min() > 30 and class_counts.max() < 110
    position = (clips // n_cls).flatten().float() / per_class  # position of each clip inside its class, in [0, 1)
    assert abs(position.mean().item() - 0.5) < 0.01 and abs(position.std().item() - (1 / 12) ** 0.5) < 0.01
    # a mix of small (keyed) and large (redrawn) classes
    mixed = torch.cat([torch.arange(10).repeat(30), 10 + torch.arange(5).repeat(1000)])
    s = EpisodeSampler(labels=mixed, classes=list(range(15)), class_names=[str(c) for c in range(15)],
                       n_way=15, n_shot=5, n_query=10, seed=2)
    ep = s.sample(50)
    both = torch.cat([ep.support, ep.query], -1)
    assert torch.equal(mixed[both], ep.classes.unsqueeze(-1).expand_as(both))
    assert all(len(set(row.tolist())) == 15 for row in both.view(-1, 15))


def test_multilabel_episodes_freeze_and_read_back_with_their_targets(tmp_path):
    from fewshot_audio.fewshot.episodes import MultiLabelEpisodeSampler

    g = torch.Generator().manual_seed(3)
    targets = torch.rand(120, 6, generator=g) < 0.3
    names, ids = [f"t{i}" for i in range(6)], [f"clip{i}" for i in range(120)]
    ep = MultiLabelEpisodeSampler(targets=targets, tags=[0, 2, 3, 5], tag_names=names, n_way=3, n_shot=2, n_query=3,
                                  seed=4).sample(7)
    path = tmp_path / "ml.json"
    freeze_episodes(path, episodes=ep, ids=ids, class_names=names,
                    header={"manifest_hash": "abc", "multi_label": True})
    back, header = read_episodes(path, manifest_hash="abc", ids=ids, class_names=names, targets=targets)
    assert header["multi_label"] is True and back.multi_label
    for a, b in ((back.support, ep.support), (back.query, ep.query), (back.classes, ep.classes),
                 (back.support_targets, ep.support_targets), (back.query_targets, ep.query_targets)):
        assert torch.equal(a, b)
    assert torch.equal(back[2:4].query_targets, ep.query_targets[2:4])
    with pytest.raises(EpisodeError, match="holds multi-label episodes; pass multi_label=True"):
        read_episodes(path, manifest_hash="abc", ids=ids, class_names=names)
    single = tmp_path / "single.json"
    freeze_episodes(single, episodes=ep, ids=ids, class_names=names, header={"manifest_hash": "abc"})
    with pytest.raises(EpisodeError, match="holds single-label episodes; drop multi_label=True"):
        read_episodes(single, manifest_hash="abc", ids=ids, class_names=names, targets=targets)
