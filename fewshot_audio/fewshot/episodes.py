"""Class splits, the N-way K-shot Q-query episode sampler and frozen episode files.

The sampler works on integer index tensors only: a class-to-clips table is
built once, and an episode (or a batch of episodes) is drawn with a handful of
vectorized tensor operations, with no per-item Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

from fewshot_audio.errors import EpisodeError
from fewshot_audio.util.io import atomic_write_text

SPLITS = ("base", "val", "novel")
EPISODE_FORMAT = "fewshot-audio-episodes"
EPISODE_VERSION = 1
DENSE_LIMIT = 256  # see EpisodeSampler.sample


# ----------------------------------------------------------------------------- splits
def make_split(classes: list[str], *, ratios: list[float], seed: int) -> dict[str, list[str]]:
    """Seeded class-disjoint split of ``classes`` into base / val / novel by ``ratios``."""
    classes = sorted(classes)
    order = np.random.default_rng(seed).permutation(len(classes))
    n_base = int(round(ratios[0] * len(classes)))
    n_val = int(round(ratios[1] * len(classes)))
    shuffled = [classes[i] for i in order]
    return {"base": sorted(shuffled[:n_base]), "val": sorted(shuffled[n_base : n_base + n_val]),
            "novel": sorted(shuffled[n_base + n_val :])}


def split_id(split: dict[str, list[str]]) -> str:
    """A short hash of a class split (frozen episode files are keyed by it)."""
    return hashlib.sha256(json.dumps(split, sort_keys=True).encode()).hexdigest()[:10]


def load_split(path: str | Path, classes: list[str]) -> dict[str, list[str]]:
    """Read a YAML split file (``base:``, ``val:``, ``novel:`` lists of class names) and check it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise EpisodeError(f"split file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise EpisodeError(f"split file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict) or set(data) - set(SPLITS) or "novel" not in data:
        raise EpisodeError(f"split file {path} must map base, val and novel to lists of class names")
    split = {k: [str(c) for c in (data.get(k) or [])] for k in SPLITS}
    known, seen = set(classes), {}
    for name, members in split.items():
        for c in members:
            if c not in known:
                raise EpisodeError(f"split file {path}: class {c!r} ({name}) is not in the dataset")
            if c in seen:
                raise EpisodeError(f"split file {path}: class {c!r} is in both {seen[c]} and {name}; splits must be disjoint")
            seen[c] = name
    return split


def save_split(path: str | Path, split: dict[str, list[str]]) -> None:
    """Write a class split as YAML (base, val, novel), atomically."""
    atomic_write_text(path, yaml.safe_dump({k: split[k] for k in SPLITS}, sort_keys=False))


# ----------------------------------------------------------------------------- sampler
@dataclass
class Episodes:
    """A batch of episodes as clip-index tensors.

    ``support``: ``(n_episodes, n_way, n_shot)``; ``query``: ``(n_episodes, n_way, n_query)``;
    ``classes``: ``(n_episodes, n_way)`` class (or tag) indices. Row ``w`` of each is way ``w``: the
    clips drawn for it. Single-label episodes leave the targets ``None`` (clip ``[e, w, k]`` is way
    ``w`` alone); multi-label episodes carry each clip's tags restricted to the episode's ways,
    ``support_targets (E, n_way, n_shot, n_way)`` and ``query_targets (E, n_way, n_query, n_way)``
    (bool; a clip drawn for way ``w`` is always positive for ``w`` and may be for other ways too).
    """

    support: torch.Tensor
    query: torch.Tensor
    classes: torch.Tensor
    support_targets: torch.Tensor | None = None
    query_targets: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.support.shape[0]

    def __getitem__(self, item) -> Episodes:
        def pick(t):
            return None if t is None else t[item]

        return Episodes(self.support[item], self.query[item], self.classes[item], pick(self.support_targets),
                        pick(self.query_targets))

    @property
    def n_way(self) -> int:
        """Ways per episode."""
        return self.support.shape[1]

    @property
    def multi_label(self) -> bool:
        """Whether the episodes carry multi-label targets."""
        return self.query_targets is not None

    def targets(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(support_targets, query_targets)`` as float on ``device`` (what ``Strategy.train_step`` takes), or
        ``None`` for single-label episodes."""
        if self.query_targets is None:
            return None
        return self.support_targets.to(device).float(), self.query_targets.to(device).float()


def restricted_targets(targets: torch.Tensor, clips: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Each clip's tags restricted to its episode's: ``targets (n_clips, n_tags)`` bool, ``clips (E, W, k)``,
    ``tags (E, W)`` -> ``(E, W, k, W)`` bool."""
    t = targets[clips]  # (E, W, k, n_tags)
    return torch.gather(t, -1, tags[:, None, None, :].expand(*clips.shape, tags.shape[1]))


class EpisodeSampler:
    """Draws N-way K-shot Q-query episodes from the clips of ``classes``.

    Parameters
    ----------
    labels : int tensor ``(n_clips,)``
        Class index of every clip in the feature array (``-1``: excluded clip).
    classes : list of int
        The class indices this sampler draws from (one split).
    class_names : list of str
        Names of all classes, for error messages.
    """

    def __init__(self, *, labels: torch.Tensor, classes: list[int], class_names: list[str], n_way: int,
                 n_shot: int, n_query: int, seed: int = 0):
        for name, value in (("ways", n_way), ("shots", n_shot), ("queries", n_query)):
            if int(value) <= 0:
                raise EpisodeError(f"{name}={value}: must be a positive integer", param=name)
        if n_way > len(classes):
            raise EpisodeError(f"{n_way}-way episodes need {n_way} classes but this split has {len(classes)}; "
                               "lower ways= or change the split ratios", param="ways")
        labels = torch.as_tensor(labels, dtype=torch.long)
        need = n_shot + n_query
        members = [torch.nonzero(labels == c).flatten() for c in classes]
        for c, m in zip(classes, members):
            if len(m) < need:
                raise EpisodeError(
                    f"class {class_names[c]!r} has {len(m)} clips but {n_shot}-shot {n_query}-query episodes need "
                    f"{need}; lower queries= or drop the class with min_clips={need}", param="queries")
        self.n_way, self.n_shot, self.n_query = n_way, n_shot, n_query
        self.classes = torch.as_tensor(classes, dtype=torch.long)
        self.counts = torch.tensor([len(m) for m in members])
        self.table = torch.full((len(classes), int(self.counts.max())), -1, dtype=torch.long)
        for i, m in enumerate(members):
            self.table[i, : len(m)] = m
        self._col = torch.arange(self.table.shape[1])
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self, n_episodes: int = 1) -> Episodes:
        """Draw ``n_episodes`` independent episodes in one vectorized step.

        The cost per episode does not grow with the dataset: up to ``DENSE_LIMIT`` classes (or clips
        in a class) every candidate gets a random key and the smallest keys win; beyond it, indices
        are drawn directly and rows that repeat one are redrawn (exactly uniform; a redraw is rare
        because the population is then at least the square of the number drawn).
        """
        m = self.n_shot + self.n_query
        rows = self._ways(n_episodes)  # (E, W)
        counts = self.counts[rows]  # (E, W)
        width, limit = self.table.shape[1], max(DENSE_LIMIT, m * m)
        if width <= limit:
            pick = self._smallest_keys(counts, width, m)
        else:  # classes up to the limit by keys, larger ones by redrawing
            pick = torch.empty(*rows.shape, m, dtype=torch.long)
            dense = counts <= limit
            if bool(dense.any()):
                pick[dense] = self._smallest_keys(counts[dense], int(counts[dense].max()), m)
            pick[~dense] = self._redraw_until_distinct(counts[~dense], m)
        clips = torch.take(self.table, rows.unsqueeze(-1) * width + pick)  # (E, W, K+Q)
        return Episodes(clips[..., : self.n_shot], clips[..., self.n_shot :], self.classes[rows])

    def _ways(self, n_episodes: int) -> torch.Tensor:
        """``(E, n_way)`` distinct rows of the class table (positions in ``self.classes``)."""
        n_cls = len(self.classes)
        if n_cls <= max(DENSE_LIMIT, self.n_way**2):
            return torch.rand(n_episodes, n_cls, generator=self.generator).argsort(dim=1)[:, : self.n_way]
        return self._redraw_until_distinct(torch.full((n_episodes,), n_cls), self.n_way)

    def _smallest_keys(self, sizes: torch.Tensor, width: int, m: int) -> torch.Tensor:
        """``(*sizes.shape, m)`` distinct positions below each ``sizes`` entry: the ``m`` smallest random keys."""
        keys = torch.rand(*sizes.shape, width, generator=self.generator)
        keys = keys.masked_fill(self._col[:width] >= sizes.unsqueeze(-1), 2.0)
        return keys.topk(m, dim=-1, largest=False, sorted=False).indices

    def _redraw_until_distinct(self, sizes: torch.Tensor, m: int) -> torch.Tensor:
        """``(len(sizes), m)`` distinct uniform positions below each ``sizes`` entry (``sizes >= m*m``)."""

        def draw(n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x = (torch.rand(len(n), m, generator=self.generator, dtype=torch.float64) * n.unsqueeze(-1)).long()
            ordered = x.sort(dim=1).values
            return x, (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)

        out, repeats = draw(sizes)
        while bool(repeats.any()):
            todo = torch.nonzero(repeats).flatten()
            out[todo], repeats[todo] = draw(sizes[todo])
        return out

    def state(self) -> torch.Tensor:
        """The random generator's state (saved in checkpoints, so a resumed run draws the same episodes)."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a :meth:`state`."""
        self.generator.set_state(state)


class DetectionEpisodeSampler(EpisodeSampler):
    """Detection episodes: 2-way tasks *within one annotated recording*. Way 0 is an event class of a recording
    (windows starting at its events' onsets), way 1 the same recording's background (windows that overlap none of
    its events): the task a detector faces, events told from the rest of their own recording.

    ``labels`` number the groups' windows ``2 g`` (events of group ``g``) and ``2 g + 1`` (its background), ``-1``:
    excluded; ``groups`` are the group indices to draw from (a split). Everything else is :class:`EpisodeSampler`'s.
    """

    def __init__(self, *, labels: torch.Tensor, groups: list[int], group_names: list[str], n_shot: int, n_query: int,
                 seed: int = 0):
        names = [f"{g} {kind}" for g in group_names for kind in ("events", "background")]
        classes = [c for g in groups for c in (2 * g, 2 * g + 1)]
        super().__init__(labels=labels, classes=classes, class_names=names, n_way=2, n_shot=n_shot, n_query=n_query,
                         seed=seed)

    def _ways(self, n_episodes: int) -> torch.Tensor:
        group = torch.randint(0, len(self.classes) // 2, (n_episodes,), generator=self.generator)
        return torch.stack([2 * group, 2 * group + 1], dim=1)


class MultiLabelEpisodeSampler:
    """N-way K-shot Q-query episodes over tags, for multi-label data.

    ``targets`` is a bool ``(n_clips, n_tags)`` matrix. Each episode picks ``n_way`` tags and, for each,
    K + Q clips carrying it, with no clip twice in an episode; every clip's targets are then restricted to
    the episode's tags (a support clip of "guitar" that is also "rock" is positive for both when both are
    in the episode). Draws that repeat a clip across tags are redrawn.
    """

    def __init__(self, *, targets: torch.Tensor, tags: list[int], tag_names: list[str], n_way: int, n_shot: int,
                 n_query: int, seed: int = 0, max_tries: int = 100, why: str = ""):
        self.targets = torch.as_tensor(targets, dtype=torch.bool)
        self.per_tag = []
        need = n_shot + n_query
        for t in tags:
            members = torch.nonzero(self.targets[:, t]).flatten()
            if len(members) < need:
                raise EpisodeError(f"tag {tag_names[t]!r} has {len(members)} clips{why} but {n_shot}-shot {n_query}-query "
                                   f"episodes need {need}; lower queries= or drop the tag with min_clips=", param="queries")
            self.per_tag.append(members)
        if n_way > len(tags):
            raise EpisodeError(f"{n_way}-way episodes need {n_way} tags but {len(tags)} are available; lower ways=", param="ways")
        self.tags = torch.as_tensor(tags)
        counts = torch.tensor([len(m) for m in self.per_tag])
        self.table = torch.full((len(tags), int(counts.max())), -1, dtype=torch.long)
        for i, m in enumerate(self.per_tag):
            self.table[i, : len(m)] = m
        self.counts = counts
        self.n_way, self.n_shot, self.n_query, self.max_tries = n_way, n_shot, n_query, max_tries
        self.generator = torch.Generator().manual_seed(seed)

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor]:
        g = self.generator
        rows = torch.randperm(len(self.tags), generator=g)[: self.n_way]
        keys = torch.rand(self.n_way, self.table.shape[1], generator=g)
        keys = keys.masked_fill(torch.arange(self.table.shape[1]) >= self.counts[rows].unsqueeze(-1), 2.0)
        pick = keys.topk(self.n_shot + self.n_query, dim=-1, largest=False).indices
        return rows, torch.gather(self.table[rows], 1, pick)

    def sample(self, n_episodes: int = 1) -> Episodes:
        """``n_episodes`` multi-label episodes: each way's support and query clips carry that tag, with their targets
        among the episode's tags."""
        sup, qry, tags = [], [], []
        for _ in range(n_episodes):
            for _ in range(self.max_tries):
                rows, clips = self._draw()
                if clips.unique().numel() == clips.numel():
                    break
            else:
                raise EpisodeError("could not draw a multi-label episode without repeating a clip; the tags overlap "
                                   "too much for this many shots and queries")
            sup.append(clips[:, : self.n_shot])
            qry.append(clips[:, self.n_shot :])
            tags.append(self.tags[rows])
        sup_t, qry_t, tag_t = torch.stack(sup), torch.stack(qry), torch.stack(tags)
        return Episodes(sup_t, qry_t, tag_t, restricted_targets(self.targets, sup_t, tag_t),
                        restricted_targets(self.targets, qry_t, tag_t))

    def state(self) -> torch.Tensor:
        """The random generator's state (saved in checkpoints)."""
        return self.generator.get_state()

    def set_state(self, state: torch.Tensor) -> None:
        """Restore a :meth:`state`."""
        self.generator.set_state(state)


# ----------------------------------------------------------------------------- frozen episode files
def episode_file_name(split: str, n_way: int, n_shot: int, n_query: int, n_episodes: int, seed: int) -> str:
    """The file name of a frozen episode file of these parameters."""
    return f"{split}-{n_way}way-{n_shot}shot-{n_query}query-{n_episodes}ep-seed{seed}.json"


def freeze_episodes(path: str | Path, *, episodes: Episodes, ids: list[str], class_names: list[str],
                    header: dict) -> None:
    """Write ``episodes`` as clip ids (never indices) with a ``header`` describing how they were drawn."""
    sup, qry, cls = episodes.support.tolist(), episodes.query.tolist(), episodes.classes.tolist()
    rows = [json.dumps({"classes": [class_names[c] for c in cls[e]],
                        "support": [[ids[i] for i in way] for way in sup[e]],
                        "query": [[ids[i] for i in way] for way in qry[e]]}, separators=(",", ":"))
            for e in range(len(episodes))]
    head = {"format": EPISODE_FORMAT, "version": EPISODE_VERSION, **header, "n_episodes": len(episodes)}
    text = "{\n" + "\n".join(f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items())
    text += '\n  "episodes": [\n    ' + ",\n    ".join(rows) + "\n  ]\n}\n"
    atomic_write_text(path, text)


def read_episodes(path: str | Path, *, manifest_hash: str, ids: list[str], class_names: list[str],
                  targets: torch.Tensor | None = None) -> tuple[Episodes, dict]:
    """Load a frozen episode file, refusing one drawn from another manifest.

    A multi-label file (header ``"multi_label": true``) stores clip ids and tags like a single-label one;
    its targets are rebuilt from ``targets`` (the dataset's ``(n_clips, n_tags)`` bool matrix, which the
    manifest hash pins down), restricted to each episode's tags."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EpisodeError(f"episode file {path} does not exist; write it with 'fewshot-audio episodes freeze'") from None
    except json.JSONDecodeError as exc:
        raise EpisodeError(f"episode file {path} is not valid JSON ({exc}); delete it to re-freeze") from None
    if data.get("format") != EPISODE_FORMAT:
        raise EpisodeError(f"{path} is not a fewshot-audio episode file")
    if data.get("manifest_hash") != manifest_hash:
        raise EpisodeError(
            f"episode file {path} was frozen from manifest {data.get('manifest_hash')} but this dataset's manifest is "
            f"{manifest_hash}; use episodes frozen for this dataset (another episodes_dir=) or freeze new ones")
    index = {cid: i for i, cid in enumerate(ids)}
    cindex = {c: i for i, c in enumerate(class_names)}
    try:
        sup = [[[index[c] for c in way] for way in ep["support"]] for ep in data["episodes"]]
        qry = [[[index[c] for c in way] for way in ep["query"]] for ep in data["episodes"]]
        cls = [[cindex[c] for c in ep["classes"]] for ep in data["episodes"]]
    except KeyError as exc:
        raise EpisodeError(f"episode file {path} names clip or class {exc} that is missing or was skipped in this "
                           "dataset; re-freeze the episodes") from None
    header = {k: v for k, v in data.items() if k != "episodes"}
    episodes = Episodes(torch.tensor(sup), torch.tensor(qry), torch.tensor(cls))
    if bool(header.get("multi_label")) != (targets is not None):
        kind = "multi-label" if header.get("multi_label") else "single-label"
        raise EpisodeError(f"episode file {path} holds {kind} episodes; "
                           + ("pass multi_label=True" if header.get("multi_label") else "drop multi_label=True")
                           + " or use another episodes_dir=")
    if targets is not None:
        episodes.support_targets = restricted_targets(targets, episodes.support, episodes.classes)
        episodes.query_targets = restricted_targets(targets, episodes.query, episodes.classes)
    return episodes, header
