"""Optuna searches run for real, as a user types them: trials pruned and kept, two processes
sharing one study, and the dashboard serving a search (tiny data, one- and two-epoch trials)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from reliability_helpers import TINY, cli_env
from sampling_helpers import make_classifier_file

from gan_lightning.sweeps.jobs import RESULT_FILE
from gan_lightning.sweeps.optuna_search import open_storage
from gan_lightning.sweeps.optuna_workers import OWNER

pytestmark = pytest.mark.slow  # each starts one or two searches of several processes' work


def search_command(classifier: Path, *overrides: str) -> list[str]:
    """``-m hparams_search=optuna`` on the tiny data, scored by ``classifier`` on 20 samples."""
    settings = [arg for arg in TINY if not arg.startswith("callbacks.generative_metrics")]
    command = [sys.executable, "-m", "gan_lightning.train", "-m", "hparams_search=optuna"]
    command += [*settings, f"metrics.classifier_ckpt={classifier}"]
    return command + ["metrics.num_samples=20", "metrics.final_num_samples=20", *overrides]


def start(cwd: Path, data_root: Path, command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=cli_env(data_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stored_study(search: Path) -> optuna.Study:
    return optuna.load_study(study_name="mlp", storage=open_storage(str(search / "optuna.journal")))


# ---------------------------------------------------------------- pruning, and the dashboard
@pytest.fixture(scope="module")
def pruned_search(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path):
    """A search whose study already holds a perfect trial (FID 0 after every epoch), so the
    median pruner stops each new trial at its first evaluation: pruning without luck."""
    cwd = tmp_path_factory.mktemp("pruned_search")
    classifier = make_classifier_file(cwd / "classifier.pt")
    search = cwd / "outputs" / "gan" / "search" / "mlp"
    storage = open_storage(str(search / "optuna.journal"))
    study = optuna.create_study(study_name="mlp", storage=storage, direction="minimize")
    study.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values={1: 0.0, 2: 0.0}))
    command = search_command(
        classifier,
        "trainer.max_epochs=2",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.n_startup_trials=1",
        "hydra.sweeper.min_epochs=1",
    )
    done = start(cwd, tiny_mnist_root, command)
    output, _ = done.communicate(timeout=600)
    assert done.returncode == 0, output[-5000:]
    return search, output


def test_a_hopeless_trial_is_pruned_and_ends_cleanly_with_its_checkpoint(pruned_search) -> None:
    search, output = pruned_search
    states = [trial.state for trial in stored_study(search).trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.PRUNED]
    for number in (1, 2):
        job = search / f"trial_{number}"
        result = json.loads((job / RESULT_FILE).read_text())
        assert (result["status"], result["epochs"]) == ("pruned", 1)
        assert (job / "checkpoints" / "last.ckpt").is_file()  # Lightning's normal end
        assert not (job / "failure.txt").exists()
    assert "0 succeeded, 2 pruned, 0 failed" in output
    assert "pruned at epoch 1" in (search / "summary.md").read_text()
    assert "Trial 1: pruned after epoch 1" in output


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_the_dashboard_serves_the_search_its_trials_and_their_fid_curves(pruned_search) -> None:
    """``optuna-dashboard <storage>`` as docs/sweeps.md shows it, read through its HTTP API."""
    search, _ = pruned_search
    port = free_port()
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    command = [str(dashboard), str(search / "optuna.journal"), "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):  # it starts in a few seconds; a loaded machine may take longer
            try:
                studies = get_json(f"{base}/api/studies")["study_summaries"]
                break
            except OSError:
                assert server.poll() is None, "optuna-dashboard exited"
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer within 2 minutes")
        (study,) = studies
        assert study["study_name"] == "mlp" and study["directions"] == ["minimize"]
        detail = get_json(f"{base}/api/studies/{study['study_id']}")
        trials = detail["trials"]
        assert [trial["state"] for trial in trials] == ["Complete", "Pruned", "Pruned"]
        pruned = trials[1]
        assert [point["step"] for point in pruned["intermediate_values"]] == [1]
        assert pruned["intermediate_values"][0]["value"] > 0  # the trial's FID after epoch 1
        params = {param["name"] for param in pruned["params"]}
        assert {"optim.d.lr", "optim.g.lr", "loss"} <= params
        assert {"key": "pruned_at_epoch", "value": "1"} in pruned["user_attrs"]
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- several workers, one study
def test_two_processes_on_one_study_split_its_trials_without_repeating_or_losing_one(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    classifier = make_classifier_file(tmp_path / "classifier.pt")
    command = search_command(
        classifier, "trainer.max_epochs=1", "hydra.sweeper.n_trials=6", "hydra.sweeper.pruner=none"
    )
    search = tmp_path / "outputs" / "gan" / "search" / "mlp"
    # Both start at once, as the tasks of a cluster array job do. Started one after the other,
    # the first could finish these second-long trials before the second has imported torch.
    first = start(tmp_path, tiny_mnist_root, command)
    second = start(tmp_path, tiny_mnist_root, command)
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]
    for process, output in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, output[-5000:]

    study = stored_study(search)
    assert study.metric_names == ["metrics/fid"]  # what the dashboard labels its plots with
    trials = study.trials
    assert [trial.number for trial in trials] == list(range(6))
    assert all(trial.state == TrialState.COMPLETE for trial in trials)
    by_worker: dict[str, list[int]] = {}
    for trial in trials:
        by_worker.setdefault(trial.user_attrs[OWNER], []).append(trial.number)
    print("trials each worker ran:", by_worker)
    assert len(by_worker) == 2  # both did some of the work
    # One folder and one finished job per trial: none ran twice, none was lost.
    jobs = sorted(path.name for path in search.glob("trial_*"))
    assert jobs == [f"trial_{number}" for number in range(6)]
    results = [json.loads((search / job / RESULT_FILE).read_text()) for job in jobs]
    assert all(result["status"] == "ok" for result in results)
    assert {result["pid"] for result in results} == {first.pid, second.pid}
    assert not list((search / "workers").glob("*-*.lock"))  # both left; no stale names


# ---------------------------------------------------------------- parallel trials
def test_joblib_runs_a_batch_of_trials_at_once_and_each_is_told(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    classifier = make_classifier_file(tmp_path / "classifier.pt")
    command = search_command(
        classifier,
        "trainer.max_epochs=1",
        "hydra.sweeper.n_trials=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
    )
    process = start(tmp_path, tiny_mnist_root, command)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-5000:]
    assert "2 trials at a time" in output  # n_jobs follows the launcher
    search = tmp_path / "outputs" / "gan" / "search" / "mlp"
    results = [json.loads((search / f"trial_{n}" / RESULT_FILE).read_text()) for n in (0, 1)]
    assert len({result["pid"] for result in results}) == 2  # two joblib worker processes
    assert all(trial.state == TrialState.COMPLETE for trial in stored_study(search).trials)
