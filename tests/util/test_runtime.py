"""The toolkit's CPU settings."""

import torch

from fewshot_audio.util import runtime


def test_threads_follow_the_usable_cpus_unless_omp_num_threads_is_set(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(runtime, "usable_cpus", lambda: 1)
        assert runtime.set_cpu_threads() == 1 == torch.get_num_threads()
        monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert runtime.set_cpu_threads() == 1  # the user's setting wins
    finally:
        torch.set_num_threads(before)


def test_usable_cpus_is_capped_by_a_cgroup_quota(monkeypatch, tmp_path):
    real_read_text = runtime.Path.read_text

    def fake(path, *args, **kwargs):
        if str(path) == "/sys/fs/cgroup/cpu.max":
            return "150000 100000\n"  # 1.5 CPUs
        return real_read_text(path, *args, **kwargs)

    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(runtime.Path, "read_text", fake)
    assert runtime.usable_cpus() == 1
    monkeypatch.setattr(runtime.Path, "read_text", lambda path, *a, **k: "max 100000\n" if str(path) ==
                        "/sys/fs/cgroup/cpu.max" else real_read_text(path, *a, **k))
    assert runtime.usable_cpus() == 4
