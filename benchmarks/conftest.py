"""Fixtures of the extraction benchmarks (test_extraction_speed.py, test_against_thingsvision.py).

``quick``: the quick pass (``--benchmark-disable`` or ``BRAINBENCH_BENCH_QUICK=1``); ``images``: one
folder of 425-px JPEGs for the session (``_extraction.jpeg_folder`` adds those a test needs);
``lines``: the "extraction benchmarks" report, printed once after the last benchmark.
"""
from __future__ import annotations

import os

import pytest


def _quick(pytestconfig) -> bool:
    env = os.environ.get("BRAINBENCH_BENCH_QUICK", "")
    return env not in ("", "0") if env else pytestconfig.getoption("benchmark_disable", False)


@pytest.fixture(scope="session")
def quick(pytestconfig):
    return _quick(pytestconfig)


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    return tmp_path_factory.mktemp("jpeg425")


@pytest.fixture(scope="session")
def lines(pytestconfig, quick):
    out: list[str] = []
    yield out
    terminal = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    if out and terminal:
        import torch

        with pytestconfig.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
            terminal.write_line("")
            terminal.write_line(f"extraction benchmarks ({'quick' if quick else 'full'} mode, "
                                f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPU(s)); "
                                "load average %.2f %.2f %.2f" % os.getloadavg())
            for line in out:
                terminal.write_line(line)
