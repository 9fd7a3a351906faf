"""Peer episode pipelines for bench_pipeline.py, each yielding ``(support, query)`` feature tensors.

Installed by ``bash benchmarks/install_peers.sh``; their submodules are imported without the packages'
top-level ``__init__`` (easyfsl's imports torchvision, learn2learn's imports torchvision and gym).
Each ``make_*`` returns ``None`` with a reason when its peer is not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import torch

L2L_ROOT = Path(__file__).parent / ".peers" / "learn2learn-0.2.0" / "learn2learn"


def _namespace(name: str, path: Path) -> None:
    """Register an empty package ``name`` at ``path`` so its submodules import without its __init__."""
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = [str(path)]
        sys.modules[name] = module


class FeatureDataset(torch.utils.data.Dataset):
    """The usual map-style dataset over an in-memory feature tensor: item ``i`` is ``(x[i], label)``."""

    def __init__(self, x: torch.Tensor, labels: np.ndarray):
        self.x, self.labels = x, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])

    def get_labels(self) -> list[int]:  # easyfsl's FewShotDataset interface
        return self.labels.tolist()


class EpisodeBatchSampler(torch.utils.data.Sampler):
    """The plain-PyTorch episode batch sampler: yields the item indices of one episode per batch."""

    def __init__(self, labels: np.ndarray, *, n_way: int, n_shot: int, n_query: int, n_episodes: int):
        self.by_class = {c: np.nonzero(labels == c)[0] for c in np.unique(labels)}
        self.n_way, self.k, self.n_episodes = n_way, n_shot + n_query, n_episodes

    def __len__(self) -> int:
        return self.n_episodes

    def __iter__(self):
        for _ in range(self.n_episodes):
            classes = np.random.choice(list(self.by_class), self.n_way, replace=False)
            yield [int(i) for c in classes for i in np.random.choice(self.by_class[c], self.k, replace=False)]


def make_plain_dataloader(x: torch.Tensor, labels: np.ndarray, *, n_way, n_shot, n_query, n_episodes):
    """Dataset + DataLoader + episode batch sampler with DataLoader's default settings."""
    sampler = EpisodeBatchSampler(labels, n_way=n_way, n_shot=n_shot, n_query=n_query, n_episodes=n_episodes)
    loader = torch.utils.data.DataLoader(FeatureDataset(x, labels), batch_sampler=sampler)

    def episodes():
        for xb, _ in loader:
            xb = xb.view(n_way, n_shot + n_query, *xb.shape[1:])
            yield xb[:, :n_shot], xb[:, n_shot:]

    return episodes


def make_easyfsl(x: torch.Tensor, labels: np.ndarray, *, n_way, n_shot, n_query, n_episodes):
    """easyfsl's TaskSampler as its docs use it: a DataLoader with its episodic collate, no workers."""
    if "easyfsl" in sys.modules:
        site = Path(sys.modules["easyfsl"].__path__[0])
    else:
        spec = importlib.util.find_spec("easyfsl")
        if spec is None:
            return None
        site = Path(spec.origin).parent
    _namespace("easyfsl", site)
    _namespace("easyfsl.datasets", site / "datasets")
    few_shot_dataset = importlib.import_module("easyfsl.datasets.few_shot_dataset")
    sys.modules["easyfsl.datasets"].FewShotDataset = few_shot_dataset.FewShotDataset
    TaskSampler = importlib.import_module("easyfsl.samplers.task_sampler").TaskSampler

    class AcceptsDataSource(torch.utils.data.Sampler):
        def __init__(self, data_source=None):  # torch >= 2.4's Sampler.__init__ takes no data_source
            pass

    class CompatTaskSampler(TaskSampler, AcceptsDataSource):  # TaskSampler's super().__init__ lands here
        pass

    sampler = CompatTaskSampler(FeatureDataset(x, labels), n_way=n_way, n_shot=n_shot, n_query=n_query, n_tasks=n_episodes)
    loader = torch.utils.data.DataLoader(FeatureDataset(x, labels), batch_sampler=sampler,
                                         collate_fn=sampler.episodic_collate_fn)

    def episodes():
        for support, _, query, _, _ in loader:
            yield support, query

    return episodes


def make_learn2learn(x: torch.Tensor, labels: np.ndarray, *, n_way, n_shot, n_query, n_episodes):
    """learn2learn's Taskset with its usual transforms (NWays, KShots, LoadData, RemapLabels)."""
    if not any(L2L_ROOT.joinpath("data").glob("task_dataset*.so")):
        return None
    _namespace("learn2learn", L2L_ROOT)
    _namespace("learn2learn.data", L2L_ROOT / "data")
    meta_dataset = importlib.import_module("learn2learn.data.meta_dataset")
    task_dataset = importlib.import_module("learn2learn.data.task_dataset")
    transforms = importlib.import_module("learn2learn.data.transforms")
    data = sys.modules["learn2learn"].data = sys.modules["learn2learn.data"]  # what the Cython code looks up
    data.MetaDataset, data.TaskDataset = meta_dataset.MetaDataset, task_dataset.TaskDataset
    by_class = {int(c): np.nonzero(labels == c)[0].tolist() for c in np.unique(labels)}
    dataset = meta_dataset.MetaDataset(FeatureDataset(x, labels), labels_to_indices=by_class)
    taskset = task_dataset.Taskset(dataset, task_transforms=[
        transforms.NWays(dataset, n=n_way), transforms.KShots(dataset, k=n_shot + n_query),
        transforms.LoadData(dataset), transforms.RemapLabels(dataset)], num_tasks=-1)

    def episodes():
        for _ in range(n_episodes):
            xb, yb = taskset.sample()
            order = torch.argsort(yb, stable=True)  # grouped by class, as the other pipelines give them
            xb = xb[order].view(n_way, n_shot + n_query, *xb.shape[1:])
            yield xb[:, :n_shot], xb[:, n_shot:]

    return episodes


PEERS = {"plain DataLoader": make_plain_dataloader, "easyfsl TaskSampler": make_easyfsl,
         "learn2learn Taskset": make_learn2learn}
