"""Gradient averaging across ranks (gloo, two CPU processes)."""

import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _train(rank: int, path: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    from fewshot_audio.fewshot.distributed import average_gradients, teardown

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    average_gradients(opt)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))[rank * 4 : rank * 4 + 4]
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    torch.save(model.state_dict(), f"{out}.{rank}")
    teardown()  # without it the process aborts at exit about one time in five (gloo threads vs. finalization)


def test_averaged_gradients_equal_one_process_on_the_whole_batch(tmp_path):
    out = str(tmp_path / "w")
    mp.spawn(_train, args=(tempfile.mktemp(dir=tmp_path), out), nprocs=2)
    a, b = torch.load(f"{out}.0"), torch.load(f"{out}.1")
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    for k, v in model.state_dict().items():
        assert torch.equal(a[k], b[k]), "ranks diverged"
        assert torch.allclose(a[k], v, atol=1e-6), k


def test_more_gpus_asked_for_than_exist_is_a_one_line_error(monkeypatch):
    import pytest

    from fewshot_audio.errors import ConfigError
    from fewshot_audio.fewshot import distributed
    from fewshot_audio.util.runtime import pick_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for k, v in {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "4", "LOCAL_RANK": "3"}.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError, match=r"started 4 processes on this node but it has 2 GPU\(s\); start 2 process\(es\) per node"):
        distributed.setup("auto")
    with pytest.raises(ConfigError, match=r"device=cuda:3: only 2 GPU\(s\) present"):
        pick_device("cuda:3")
