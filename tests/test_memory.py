"""The one free-memory probe (core/compute/memory.py) respects a container's cgroup limit, v2 and v1."""
from __future__ import annotations

import numpy as np
import pytest

from brainbench.core.compute import memory
from brainbench.core.compute._ridge_backends import NumpyBackend
from brainbench.core.compute.ridge import DEFAULT_ALPHAS, _Engine

GIB = 2**30


def cgroup_v2(root, limit, used):
    (root / "memory.max").write_text(f"{limit}\n")
    (root / "memory.current").write_text(f"{used}\n")
    return root


def test_cgroup_v2_limit_less_usage(tmp_path):
    assert memory.cgroup_available(cgroup_v2(tmp_path, GIB, GIB // 4)) == 3 * GIB // 4
    assert memory.cgroup_available(cgroup_v2(tmp_path, GIB, 2 * GIB)) == 0  # over the limit: nothing left


def test_cgroup_v1_limit_less_usage_and_its_unlimited_value(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(f"{2 * GIB}\n")
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text(f"{GIB // 2}\n")
    assert memory.cgroup_available(tmp_path) == 3 * GIB // 2
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1's "no limit"
    assert memory.cgroup_available(tmp_path) is None


def test_no_limit_means_the_machine_s_available_memory(tmp_path):
    assert memory.cgroup_available(tmp_path) is None  # no cgroup files at all
    assert memory.cgroup_available(cgroup_v2(tmp_path, "max", GIB)) is None
    free = memory.free_host_memory()
    assert free is not None and 0 < free < 2**50  # Linux always has /proc/meminfo


def test_the_ridge_engine_sizes_its_chunks_within_the_container_limit(tmp_path, monkeypatch):
    if memory._meminfo_available() is None or memory._meminfo_available() < 64 * 2**20:
        pytest.skip("needs 64 MiB of available memory")
    monkeypatch.setattr(memory, "CGROUP_ROOT", cgroup_v2(tmp_path, 16 * 2**20, 0))  # a 16 MiB container
    assert NumpyBackend().free_memory() == 16 * 2**20
    rng = np.random.default_rng(0)
    n, m = 400, 4000
    X, Y = rng.standard_normal((n, 10), dtype=np.float32), rng.standard_normal((n, m), dtype=np.float32)

    def chunk():
        return _Engine(X, Y, DEFAULT_ALPHAS, 5, "loo", True, "numpy", None, None).chunk

    # 6 live (n,)-blocks per target in float32, in a quarter of what is left: 16 MiB / (4 · 6 · 400 · 4 B)
    assert chunk() == 16 * 2**20 // (4 * 6 * n * 4) == 436
    monkeypatch.setattr(memory, "CGROUP_ROOT", tmp_path / "none")  # no container limit: the cache-sized chunk
    assert chunk() == 512
