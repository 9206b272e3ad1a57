"""A finished run as a user sees it: a real ``tensorboard`` server, queried over its HTTP API."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sampling_helpers import run_cli

RUN = "tensorboard"  # the event folder's name relative to --logdir, as TensorBoard lists it
# HPARAMS columns with values in a run without a classifier (metrics/* are declared too, but
# stay empty until a classifier scores the generator).
METRICS = ["loss/d_epoch", "loss/g_epoch"]
PICTURES = ["final_samples_10x10", "interpolation", "loss_curves", "progress", "real_vs_fake"]
# Plain HTTP to loopback: a proxy from the environment must not see these requests.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def get(self, path: str, **query: str) -> bytes:
        url = f"{self.url}{path}?{urllib.parse.urlencode(query)}" if query else self.url + path
        with OPENER.open(url, timeout=30) as response:
            return response.read()

    def json(self, path: str, body: dict[str, Any] | None = None, **query: str) -> Any:
        if body is None:
            return json.loads(self.get(path, **query))
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with OPENER.open(request, timeout=30) as response:
            return json.loads(response.read())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def tensorboard_server(logdir: Path, log_file: Path) -> Iterator[Server]:
    """``tensorboard --logdir`` on a free loopback port, stopped on exit whatever happened."""
    port = free_port()
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
            + ["--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Server(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_until_loaded(server: Server, log_file: Path, deadline_s: float = 180) -> None:
    """Until the last thing a run writes (its pictures) is served; TensorBoard loads lazily."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"tensorboard exited early:\n{log_file.read_text()}")
        with contextlib.suppress(urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            if "pictures/progress" in server.json("/data/plugin/images/tags").get(RUN, {}):
                return
        time.sleep(1)
    pytest.fail(f"tensorboard served no pictures in {deadline_s} s:\n{log_file.read_text()}")


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """A finished 2-epoch run, made with the command a user types."""
    root = tmp_path_factory.mktemp("tensorboard_run")
    run = root / "run"
    result = run_cli(
        "gan_lightning.train",
        ["trainer=debug", f"data.root={tiny_mnist_root}", "data.batch_size=16"]
        + [f"hydra.run.dir={run}"],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return run


@pytest.fixture(scope="module")
def server(run_folder: Path) -> Iterator[Server]:
    log_file = run_folder.parent / "tensorboard_server.log"
    with tensorboard_server(run_folder, log_file) as running:
        wait_until_loaded(running, log_file)
        yield running
    assert running.process.poll() is not None, "the tensorboard server is still running"


def test_run_is_listed(server: Server) -> None:
    assert server.json("/data/runs") == [RUN]


def test_loss_curves_and_discriminator_outputs(server: Server) -> None:
    tags = server.json("/data/plugin/scalars/tags")[RUN]
    for name in ("loss/d", "loss/g", "D(x)", "D(G(z))"):
        assert {f"{name}_step", f"{name}_epoch"} <= set(tags), name
    per_epoch = server.json("/data/plugin/scalars/scalars", run=RUN, tag="loss/d_epoch")
    assert len(per_epoch) == 2  # [wall_time, step, value] once per epoch
    per_batch = server.json("/data/plugin/scalars/scalars", run=RUN, tag="D(G(z))_step")
    assert len(per_batch) == 6 and all(0 <= value <= 1 for _, _, value in per_batch)


def test_sample_grids_and_pictures(server: Server) -> None:
    tags = server.json("/data/plugin/images/tags")[RUN]
    assert {"samples/fixed_noise", *(f"pictures/{name}" for name in PICTURES)} <= set(tags)
    grids = server.json("/data/plugin/images/images", run=RUN, tag="samples/fixed_noise")
    assert [entry["step"] for entry in grids] == [0, 1]  # one fixed-noise grid per epoch

    def image_bytes(tag: str) -> bytes:
        (entry,) = server.json("/data/plugin/images/images", run=RUN, tag=tag)
        return server.get(f"/data/plugin/images/individualImage?{entry['query']}")

    assert image_bytes("pictures/final_samples_10x10").startswith(b"\x89PNG")
    assert image_bytes("pictures/progress").startswith(b"GIF89a")  # animated in the browser


def test_hyperparameters_and_their_metrics(server: Server) -> None:
    experiment = server.json("/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert {"model.name", "optim.g.lr", "optim.d.lr", "loss._target_", "seed"} <= hparams
    assert "temperature" in hparams  # the metrics depend on it
    declared = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert {"metrics/fid", "metrics/is", *METRICS} <= set(declared)

    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 10,
    }
    (group,) = server.json("/data/plugin/hparams/session_groups", request)["sessionGroups"]
    assert group["hparams"]["model.name"] == "dcgan"
    values = {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
    assert set(values) == set(METRICS)


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path):
    """A finished 2-job learning-rate sweep, served by ``tensorboard --logdir <sweep folder>``."""
    root = tmp_path_factory.mktemp("tensorboard_sweep")
    sweep = root / "sweep"
    result = run_cli(
        "gan_lightning.train",
        ["-m", "optim.d.lr=1e-4,3e-4", "model=mlp", "trainer=debug", "trainer.max_epochs=1"]
        + [f"data.root={tiny_mnist_root}", "data.batch_size=16", "callbacks.progress_bar=null"]
        + ["callbacks.training_pictures=null", f"hydra.sweep.dir={sweep}"],
        cwd=root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log_file = root / "tensorboard_server.log"
    with tensorboard_server(sweep, log_file) as running:
        yield running


def test_a_sweeps_jobs_compare_in_hparams_with_the_swept_key_as_a_column(
    sweep_server: Server,
) -> None:
    request = {
        "experimentName": "",
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE"],
        "colParams": [],
        "startIndex": 0,
        "sliceSize": 10,
    }
    deadline = time.monotonic() + 180
    groups: list = []
    while len(groups) < 2 and time.monotonic() < deadline:
        with contextlib.suppress(urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            groups = sweep_server.json("/data/plugin/hparams/session_groups", request)[
                "sessionGroups"
            ]
        time.sleep(1)
    assert len(groups) == 2, groups  # one row per job
    assert sorted(group["hparams"]["optim.d.lr"] for group in groups) == [1e-4, 3e-4]
    for group in groups:
        values = {value["name"]["tag"]: value["value"] for value in group["metricValues"]}
        assert set(METRICS) <= set(values)  # the metric columns have values in every row
