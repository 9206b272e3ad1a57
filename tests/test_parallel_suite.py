"""`make test` runs the suite on every core (pytest-xdist), its workers sharing torch's threads."""

from __future__ import annotations

import os
import re
from pathlib import Path

import conftest
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def test_make_test_runs_one_worker_per_core_and_installs_xdist() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^TEST_WORKERS \?= auto$", makefile, flags=re.M)
    for target in ("test", "test-fast"):
        recipe = re.search(rf"^{target}:.*\n\t(.*)$", makefile, flags=re.M)
        assert recipe and "pytest -n $(TEST_WORKERS)" in recipe.group(1), target
    dev = re.search(r"^dev = \[(.*?)^\]", (REPO / "pyproject.toml").read_text(), re.S | re.M)
    assert dev and '"pytest-xdist>=' in dev.group(1)


@pytest.mark.parametrize(
    ("workers", "share"), [("2", 8), ("3", 5), ("64", 1), ("1", None), (None, None)]
)
def test_each_worker_gets_its_share_of_the_cores(
    workers: str | None, share: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads_before = torch.get_num_threads()
    monkeypatch.setattr(conftest, "available_cores", lambda: 16)  # whatever this machine has
    monkeypatch.setenv("OMP_NUM_THREADS", "unchanged")
    if workers is None:  # not under xdist
        monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", workers)
    try:
        conftest.pytest_configure(None)  # type: ignore[arg-type]  # the config is not read
        if share is None:  # one process: torch keeps its threads
            assert os.environ["OMP_NUM_THREADS"] == "unchanged"
            assert torch.get_num_threads() == threads_before
        else:
            assert os.environ["OMP_NUM_THREADS"] == str(share)  # for the CLI runs tests start
            assert torch.get_num_threads() == share
    finally:
        torch.set_num_threads(threads_before)
