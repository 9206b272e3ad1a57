"""Sweeps as a user runs them: parallel jobs, searches, other launchers, and what is refused
before any job starts."""

from __future__ import annotations

import contextlib
import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict, read_write
from reliability_helpers import CONFIG_DIR, TINY, cli_env, run_cli
from sampling_helpers import make_classifier_file

from gan_lightning.hydra_callbacks import RunFolderCheck
from gan_lightning.sweeps import preflight
from gan_lightning.sweeps.jobs import RESULT_FILE, available_cores, threads_per_job
from gan_lightning.sweeps.objective import objective_value, worst


def summary(sweep_dir: Path) -> list[dict[str, str]]:
    with (sweep_dir / "summary.csv").open() as file:
        return list(csv.DictReader(file))


def results(sweep_dir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(sweep_dir.glob(f"*/{RESULT_FILE}"))]


# ---------------------------------------------------------------- refused before any job starts
def compose_sweep(tmp_path: Path, overrides: list[str], sweep_dir: Path | None = None):
    """A multirun's config as the launching process sees it, its sweep folder in tmp_path."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*overrides, f"hydra.sweep.dir={sweep_dir or tmp_path / 'sweep'}"],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.runtime.cwd = str(tmp_path)
    HydraConfig.instance().set_config(cfg)
    return cfg


@contextlib.contextmanager
def editable(cfg: DictConfig) -> Iterator[None]:
    """Hydra's node is read-only; a test sets what a command line would."""
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        yield


def refusal(cfg: DictConfig) -> str:
    with pytest.raises(SystemExit) as stop:
        RunFolderCheck().on_multirun_start(cfg)
    return str(stop.value.code)


def test_an_unknown_search_space_key_is_refused_with_the_closest_keys(tmp_path: Path) -> None:
    cfg = compose_sweep(tmp_path, ["hparams_search=lr_grid"])
    with editable(cfg):
        cfg.hydra.sweeper.params["optim.d.lrr"] = "1e-4,2e-4"
    message = refusal(cfg)
    assert "search space has the key optim.d.lrr" in message
    assert "Did you mean optim.d.lr" in message
    assert not (tmp_path / "sweep").exists()  # nothing written


def test_an_unknown_group_option_in_a_search_is_refused(tmp_path: Path) -> None:
    cfg = compose_sweep(tmp_path, [])
    with editable(cfg):
        cfg.hydra.overrides.task = ["loss=bce,hingee"]
    message = refusal(cfg)
    assert "sets loss=hingee, but the loss group has no option hingee" in message
    assert "bce, hinge, lsgan, minimax, relativistic, wgan_gp" in message


def test_the_shipped_searches_pass_the_checks(tmp_path: Path) -> None:
    for search in ("lr_grid", "optuna"):
        cfg = compose_sweep(tmp_path, [f"hparams_search={search}"])
        assert preflight.search_space_problem(cfg) is None, search


def test_an_unknown_key_in_an_optuna_search_space_is_refused_before_any_trial(
    tmp_path: Path,
) -> None:
    cfg = compose_sweep(tmp_path, ["hparams_search=optuna"])
    with editable(cfg):
        cfg.hydra.sweeper.params["tricks.spectral_nrom"] = "choice(false, true)"
    message = refusal(cfg)
    assert "search space has the key tricks.spectral_nrom" in message
    assert "Did you mean tricks.spectral_norm" in message


def test_ddp_in_a_multirun_is_refused(tmp_path: Path) -> None:
    assert "cannot run inside a multirun" in refusal(compose_sweep(tmp_path, ["trainer=ddp"]))
    cfg = compose_sweep(tmp_path, ["trainer.devices=2"])
    assert "trainer.devices=2 (DDP over several devices)" in refusal(cfg)
    cfg = compose_sweep(tmp_path, [])
    with editable(cfg):
        cfg.hydra.overrides.task = ["trainer=default,ddp"]  # swept: the base config is fine
    assert "hydra#2070" in refusal(cfg)


def test_more_parallel_jobs_than_cores_are_refused(tmp_path: Path) -> None:
    cores = available_cores()
    cfg = compose_sweep(tmp_path, ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={cores + 1}"])
    message = refusal(cfg)
    assert f"hydra.launcher.n_jobs={cores + 1} runs more jobs at once than the {cores}" in message
    assert f"Set hydra.launcher.n_jobs={cores} or fewer" in message


def test_a_finished_sweep_folder_is_never_run_over(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "optim.d.lr=0.0001" / "checkpoints").mkdir(parents=True)
    (sweep_dir / "optim.d.lr=0.0001" / "checkpoints" / "last.ckpt").write_text("")
    message = refusal(compose_sweep(tmp_path, []))
    assert "already holds runs" in message and "plus ckpt_path=last" in message
    (sweep_dir / "summary.csv").write_text("job\n")
    message = refusal(compose_sweep(tmp_path, []))
    assert f"the sweep folder {sweep_dir} already holds a finished sweep" in message
    RunFolderCheck().on_multirun_start(compose_sweep(tmp_path, ["ckpt_path=last"]))  # resumes
    assert (sweep_dir / "summary.csv").read_text() == "job\n"


def test_an_optuna_search_without_the_classifier_is_refused(tmp_path: Path) -> None:
    cfg = compose_sweep(tmp_path, ["hparams_search=optuna"])
    message = refusal(cfg)
    assert "needs the classifier, but there is none at" in message
    assert "python -m gan_lightning.train_classifier" in message


def test_a_missing_plugin_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preflight.importlib.util, "find_spec", lambda name: None)
    problem = preflight.missing_plugin(["-m", "hydra/launcher=joblib", "optim.d.lr=1e-4,2e-4"])
    assert problem.startswith("hydra/launcher=joblib needs the Hydra plugin hydra-joblib-launcher")
    assert 'pip install -e ".[sweeps]"' in problem
    assert preflight.missing_plugin(["-m", "optim.d.lr=1e-4,2e-4"]) is None


def test_a_failed_job_reports_the_worst_value_of_its_metric() -> None:
    assert worst("metrics/fid") == float("inf") and worst("metrics/is") == float("-inf")
    assert objective_value({"metrics/fid": float("nan")}, "metrics/fid") == float("inf")
    assert objective_value({"metrics/is": 3.5}, "metrics/is") == 3.5


def test_joblib_jobs_share_the_cores() -> None:
    launcher = {"_target_": "hydra_plugins...JoblibLauncher", "n_jobs": 2}
    assert threads_per_job(launcher, cores=16) == 8
    assert threads_per_job({**launcher, "n_jobs": -1}, cores=16) == 1  # joblib: every core
    assert threads_per_job({"_target_": "x.BasicLauncher"}, cores=16) is None


def test_the_slurm_launcher_renders_our_documented_job_parameters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit

    cfg = compose_sweep(tmp_path, ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"])
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    executors = []
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    monkeypatch.setattr(
        submitit.AutoExecutor, "map_array", lambda self, *args: executors.append(self) or []
    )
    launcher.launch([["optim.d.lr=1e-4"], ["optim.d.lr=2e-4"]], initial_job_idx=0)
    (executor,) = executors
    script = executor._executor._make_submission_file_text("python -m train", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-task=1",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mem=16GB",
        "#SBATCH --time=240",
        "#SBATCH --ntasks-per-node=1",
    ):
        assert line in script, line


# ---------------------------------------------------------------- real sweeps
def test_joblib_runs_two_jobs_in_parallel_processes(tmp_path: Path, tiny_mnist_root: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "optim.d.lr=1e-4,2e-4"]
        + ["trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"],
        tiny_mnist_root,
        tmp_path,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout
    jobs = results(sweep_dir)
    assert [job["status"] for job in jobs] == ["ok", "ok"]
    assert len({job["pid"] for job in jobs}) == 2  # two worker processes
    assert {job["torch_threads"] for job in jobs} == {max(available_cores() // 2, 1)}
    assert [row["status"] for row in summary(sweep_dir)] == ["ok", "ok"]


@pytest.mark.slow
def test_submitit_local_runs_a_sweep_through_submitit(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    sweep_dir = tmp_path / "sweep"
    result = run_cli(
        ["-m", "hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1"]
        + ["optim.d.lr=1e-4,2e-4", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"],
        tiny_mnist_root,
        tmp_path,
        timeout=600,  # three processes start one after another: slow on a loaded machine
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert list((sweep_dir / ".submitit").iterdir())  # submitit's job files, as on a cluster
    jobs = results(sweep_dir)
    assert [job["status"] for job in jobs] == ["ok", "ok"]
    assert {job["torch_threads"] for job in jobs} == {1}  # cpus_per_task
    for job in sweep_dir.glob("*optim.d.lr=*"):
        assert (job / "checkpoints" / "last.ckpt").is_file()
    rows = summary(sweep_dir)
    assert sorted(row["optim.d.lr"] for row in rows) == ["0.0001", "0.0002"]


def run_search(cwd: Path, data_root: Path, classifier: Path, *overrides: str):
    """``-m hparams_search=optuna`` on the tiny data, scored by ``classifier`` on 20 samples."""
    settings = [arg for arg in TINY if not arg.startswith("callbacks.generative_metrics")]
    command = [sys.executable, "-m", "gan_lightning.train", "-m", "hparams_search=optuna"]
    command += [*settings, "trainer.max_epochs=1", f"metrics.classifier_ckpt={classifier}"]
    command += ["metrics.num_samples=20", "metrics.final_num_samples=20", *overrides]
    return subprocess.run(
        command,
        cwd=cwd,
        env=cli_env(data_root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_an_optuna_search_names_its_best_trial_and_resumes_after_a_kill(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    import optuna

    from gan_lightning.sweeps.optuna_search import open_storage

    classifier = make_classifier_file(tmp_path / "classifier.pt")
    first = run_search(tmp_path, tiny_mnist_root, classifier, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stdout[-5000:]
    search = tmp_path / "outputs" / "gan" / "search" / "mlp"  # named after the study
    storage = open_storage(str(search / "optuna.journal"))  # Optuna's journal file
    rows = summary(search)
    assert sorted(row["job"] for row in rows) == ["trial_0", "trial_1"]
    best = rows[0]
    assert best["status"] == "ok" and float(best["metrics/fid"]) == float(best["fid"])
    assert "optim.d.lr" in best and "loss" in best  # the search space, as columns
    assert "Best by metrics/fid; train it again as a single run with:" in first.stdout
    assert f"optim.d.lr={best['optim.d.lr']}" in first.stdout.split("single run with:")[1]
    study = optuna.load_study(study_name="mlp", storage=storage)
    assert study.best_value == pytest.approx(float(best["metrics/fid"]))

    # Killed during its third trial (a running trial no live sweep process holds); the same
    # command (4 trials in all) fails it and finishes the search.
    study.ask()
    resumed = run_search(tmp_path, tiny_mnist_root, classifier, "hydra.sweeper.n_trials=4")
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    states = [t.state.name for t in optuna.load_study(study_name="mlp", storage=storage).trials]
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert sorted(row["job"] for row in summary(search)) == ["trial_0", "trial_1", "trial_3"]

    # Finished: the same command again is refused before any job starts.
    cfg = compose_sweep(
        tmp_path,
        ["hparams_search=optuna", "model=mlp", "hydra.sweeper.n_trials=4"]
        + [f"metrics.classifier_ckpt={classifier}"],
        sweep_dir=search,
    )
    assert "the search mlp in" in refusal(cfg) and "already finished its 4 trials" in refusal(cfg)


def test_the_terminal_table_fits_80_columns_and_no_table_repeats_the_optimized_metric(
    tmp_path: Path,
) -> None:
    from rich.console import Console

    from gan_lightning.sweeps.summary import JobRow, markdown, rich_table

    metrics = {"fid": 1043.2, "kid": 0.7357, "is": 2.663, "precision": 0.9872, "recall": 0.0}
    rows = [
        JobRow(
            job=f"optim.d.lr={d},optim.g.lr={g}",
            overrides={"optim.d.lr": d, "optim.g.lr": g, "model": "dcgan"},
            status="ok",
            epochs=2,
            wall_time_s=47.43,
            value=metrics["fid"] + index,
            metrics={**metrics, "fid": metrics["fid"] + index},
        )
        for index, (d, g) in enumerate(
            [("0.0002", "0.0008"), ("5e-05", "0.0008"), ("0.0008", "5e-05")]
        )
    ]
    console = Console(width=80, record=True)
    console.print(rich_table(rows, "metrics/fid", tmp_path))
    text = console.export_text()
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    header = next(line for line in lines if "status" in line)
    # Whole titles, one FID column (by its title), three significant digits, no exponent.
    assert header.split() == [
        "optim.d.lr",
        "optim.g.lr",
        "status",
        "epochs",
        "wall",
        "s",
        "FID",
        "↓",
        "precision",
        "recall",
    ]
    assert "1043 " in text and "e+" not in text
    table = markdown(rows, "metrics/fid", tmp_path)
    assert "| metrics/fid ↓ | KID |" in table and "| FID |" not in table
    # Optuna's long floats are shortened for reading; the command to paste keeps them whole.
    rows[0].overrides["optim.g.lr"] = "0.00027294705821610083"
    table = markdown(rows, "metrics/fid", tmp_path)
    assert "| 0.0002 | 0.0002729 | ok |" in table
    assert "optim.g.lr=0.00027294705821610083" in table
