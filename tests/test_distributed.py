"""Gradient averaging across ranks (gloo, two CPU processes)."""

import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _train(rank: int, path: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=2)
    from fewshot_audio.distributed import average_gradients

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
    dist.destroy_process_group()


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
