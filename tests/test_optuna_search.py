"""The Optuna search's parts, each alone and fast: the search space, samplers and pruners by name,
storage, workers sharing a study, the trial's reports and pruning, and how the sweeper tells
Optuna each job's end. The searches run for real in tests/test_optuna_runs.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from reliability_helpers import CONFIG_DIR

from gan_lightning.callbacks.metrics import GenerativeMetrics
from gan_lightning.callbacks.pruning import OptunaPruning
from gan_lightning.errors import ConfigError, RunError
from gan_lightning.sweeps import optuna_factories, optuna_search
from gan_lightning.sweeps.jobs import RESULT_FILE, JobRecord
from gan_lightning.sweeps.optuna_space import grid_size, parse_search_space
from gan_lightning.sweeps.optuna_trial import PRUNED_AT, TrialReporter
from gan_lightning.sweeps.optuna_workers import OWNER, Worker
from gan_lightning.sweeps.summary import collect, headline
from hydra_plugins.gan_lightning_optuna.sweeper import GanOptunaSweeper, parallel_jobs

optuna.logging.set_verbosity(optuna.logging.WARNING)
REPO = CONFIG_DIR.parent


def shipped_params() -> dict[str, str]:
    return dict(OmegaConf.load(CONFIG_DIR / "hparams_search" / "optuna.yaml").hydra.sweeper.params)


def journal_study(tmp_path: Path, direction: str = "minimize", **kwargs) -> optuna.Study:
    storage = optuna_search.open_storage(str(tmp_path / "optuna.journal"))
    return optuna.create_study(study_name="s", storage=storage, direction=direction, **kwargs)


# ---------------------------------------------------------------- the search space
def test_the_shipped_space_becomes_optuna_distributions_and_overrides() -> None:
    space = parse_search_space(shipped_params(), ["model=mlp", "optim.d.lr=interval(1e-4,2e-4)"])
    lr = space.distributions["optim.d.lr"]
    assert lr == FloatDistribution(1e-4, 2e-4)  # the command line replaced the log interval
    assert space.distributions["optim.g.lr"] == FloatDistribution(1e-5, 1e-3, log=True)
    betas = space.distributions["optim.d.betas"]
    assert betas == CategoricalDistribution(["[0.0,0.999]", "[0.5,0.999]", "[0.9,0.999]"])
    assert space.fixed == ["model=mlp"]
    overrides = space.overrides({"optim.d.betas": "[0.5,0.999]", "loss": "hinge"})
    assert overrides == ["model=mlp", "optim.d.betas=[0.5,0.999]", "loss=hinge"]


def test_ranges_keep_hydras_meaning_and_grids_need_finite_keys() -> None:
    space = parse_search_space({"a": "range(1, 5)", "b": "range(0, 1, step=0.25)"}, [])
    assert space.distributions["a"] == IntDistribution(1, 4)  # Hydra's range leaves out its stop
    assert space.distributions["b"] == FloatDistribution(0.0, 0.75, step=0.25)
    grid = parse_search_space({"a": "range(1, 5)", "loss": "bce,hinge"}, []).grid()
    assert grid == {"a": [1, 2, 3, 4], "loss": ["bce", "hinge"]} and grid_size(grid) == 8
    with pytest.raises(ConfigError, match="sampler=grid needs a finite set of values for every"):
        parse_search_space({"optim.d.lr": "interval(1e-5, 1e-3)"}, []).grid()
    with pytest.raises(ConfigError, match=r"x=tag\(log, range\(1, 5\)\) must be a non-empty range"):
        parse_search_space({}, ["x=tag(log, range(1, 5))"])
    with pytest.raises(ConfigError, match=r"optim.d.lr=interval\(0.1, 0.01\): .*fix it in"):
        parse_search_space({"optim.d.lr": "interval(0.1, 0.01)"}, [])


# ---------------------------------------------------------------- samplers and pruners by name
def test_unknown_sampler_and_pruner_names_are_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError) as refused:
        optuna_factories.check_names("tpee", "median")
    assert str(refused.value).startswith("hydra.sweeper.sampler=tpee is not a sampler")
    assert "use one of tpe, random, cmaes, grid" in str(refused.value)
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner=medain is not a pruner.*median, "):
        optuna_factories.check_names("tpe", "medain")


@pytest.mark.parametrize("name", sorted(optuna_factories.SAMPLERS))
def test_every_sampler_proposes_trials_from_the_space(name: str) -> None:
    space = parse_search_space({"optim.d.lr": "choice(1e-4, 2e-4)", "n": "range(1, 4)"}, [])
    sampler = optuna_factories.make_sampler(
        name, seed=0, n_startup_trials=1, trials_so_far=0, grid=space.grid()
    )
    study = optuna.create_study(sampler=sampler)
    for _ in range(3):
        trial = study.ask(space.distributions)
        assert trial.params["optim.d.lr"] in ("0.0001", "0.0002")  # as Hydra writes them
        assert trial.params["n"] in (1, 2, 3)
        study.tell(trial, float(trial.params["n"]))


def test_a_sampler_is_reproducible_from_the_seed_but_never_replays_earlier_trials() -> None:
    space = parse_search_space({"x": "interval(0, 1)"}, [])

    def first_x(trials_so_far: int) -> float:
        sampler = optuna_factories.make_sampler(
            "random", seed=42, n_startup_trials=5, trials_so_far=trials_so_far
        )
        return optuna.create_study(sampler=sampler).ask(space.distributions).params["x"]

    assert first_x(0) == first_x(0)
    assert first_x(3) != first_x(0)  # a resumed search, or a second worker, draws afresh


@pytest.mark.parametrize("name", sorted(optuna_factories.PRUNERS))
def test_every_pruner_builds(name: str) -> None:
    pruner = optuna_factories.make_pruner(name, n_startup_trials=1, min_epochs=1)
    assert isinstance(pruner, optuna.pruners.BasePruner)


# ---------------------------------------------------------------- storage and stored studies
def test_a_journal_file_or_database_url_opens_and_a_broken_one_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "new" / "optuna.journal"
    assert isinstance(optuna_search.open_storage(str(journal)), optuna.storages.JournalStorage)
    database = optuna_search.open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    assert isinstance(database, optuna.storages.RDBStorage)
    url = "postgresql://gan:secret@127.0.0.1:1/none"
    with pytest.raises(RunError) as refused:
        optuna_search.open_storage(url)
    message = str(refused.value)
    assert message.startswith("hydra.sweeper.storage=postgresql://gan:***@127.0.0.1:1/none cannot")
    assert "secret" not in message and "leave it unset for the default" in message
    (tmp_path / "file").write_text("")
    with pytest.raises(RunError, match="hydra.sweeper.storage=.*cannot be opened"):
        optuna_search.open_storage(str(tmp_path / "file" / "optuna.journal"))


def test_reading_a_search_that_has_no_journal_yet_creates_nothing(tmp_path: Path) -> None:
    journal = tmp_path / "optuna.journal"
    assert optuna_search.finished_trials(str(journal), "s") == 0
    assert not journal.exists()


def test_a_stored_study_of_the_other_direction_is_named_with_the_fix(tmp_path: Path) -> None:
    study = journal_study(tmp_path, direction="maximize")
    message = optuna_search.direction_problem(study, "minimize", "metrics/fid")
    assert "the study s in its storage was made to maximize" in message
    assert "optimized_metric=metrics/fid is to minimize" in message
    assert "hydra.sweeper.study_name=<new name>" in message
    assert optuna_search.direction_problem(study, "maximize", "metrics/is") is None


# ---------------------------------------------------------------- workers sharing a study
def test_a_dead_workers_running_trial_fails_and_a_live_ones_is_left_alone(tmp_path: Path) -> None:
    study = journal_study(tmp_path)
    folder = tmp_path / "workers"
    with Worker(folder) as live, Worker(folder) as me:
        mine = live.ask(study, {}, 1)[0]  # running in another live worker
        dead = study.ask()
        dead.set_user_attr(OWNER, "host-1-dead")
        (folder / "host-1-dead.lock").write_text("")  # its process died holding nothing
        by_hand = study.ask()  # asked outside any worker (a search from before workers)
        with me.exclusive():
            failed = me.fail_dead_trials(study)
        assert {t.number for t in failed} == {dead.number, by_hand.number}
        assert study.trials[mine.number].state == TrialState.RUNNING
        assert not (folder / "host-1-dead.lock").exists()
        assert me.is_alive(live.name)
    assert not me.is_alive(live.name)  # it left: its trials would be failed now


def test_a_worker_holds_its_lock_in_another_process_until_it_ends(tmp_path: Path) -> None:
    """flock is released by the OS when the holder dies, however it dies."""
    folder = tmp_path / "workers"
    code = (
        "import sys, time\nfrom pathlib import Path\n"
        "from gan_lightning.sweeps.optuna_workers import Worker\n"
        f"w = Worker(Path({str(folder)!r})).__enter__()\n"
        "print(w.name, flush=True)\ntime.sleep(60)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        name = other.stdout.readline().strip()
        with Worker(folder) as me:
            assert me.is_alive(name)
            other.kill()
            other.wait(timeout=30)
            assert not me.is_alive(name)
    finally:
        other.kill()


# ---------------------------------------------------------------- a trial's reports and pruning
def finished_trial(study: optuna.Study, values: dict[int, float]) -> None:
    study.add_trial(
        optuna.trial.create_trial(value=values[max(values)], intermediate_values=values)
    )


def fake_trainer(callbacks: list, epoch: int, fid: float, max_epochs: int = 3):
    return SimpleNamespace(
        callbacks=callbacks,
        current_epoch=epoch,
        callback_metrics={"metrics/fid": fid},
        max_epochs=max_epochs,
        should_stop=False,
        is_global_zero=True,
    )


def test_the_pruning_callback_reports_fresh_values_and_stops_a_losing_trial(tmp_path: Path) -> None:
    study = journal_study(tmp_path)
    finished_trial(study, {1: 10.0, 2: 8.0, 3: 6.0})  # trial 0: much better than what follows
    trial = study.ask()
    metrics = GenerativeMetrics(classifier_ckpt=None)
    pruning = OptunaPruning(
        storage=str(tmp_path / "optuna.journal"),
        study_name="s",
        trial=trial.number,
        metric="metrics/fid",
        pruner="median",
        n_startup_trials=1,
        min_epochs=2,
    )
    callbacks = [metrics, pruning]

    metrics.evaluated_epoch = 0  # epoch 1 evaluated: reported, but min_epochs=2 keeps it going
    trainer = fake_trainer(callbacks, epoch=0, fid=50.0)
    pruning.on_train_epoch_end(trainer, None)
    assert not trainer.should_stop
    trainer = fake_trainer(callbacks, epoch=1, fid=40.0)  # no evaluation this epoch: stale value
    pruning.on_train_epoch_end(trainer, None)
    assert study.trials[1].intermediate_values == {1: 50.0}

    metrics.evaluated_epoch = 2
    trainer = fake_trainer(callbacks, epoch=2, fid=30.0, max_epochs=5)
    pruning.on_train_epoch_end(trainer, None)
    assert trainer.should_stop and pruning.pruned_at_epoch == 3
    stored = study.trials[1]
    assert stored.intermediate_values == {1: 50.0, 3: 30.0}
    assert stored.user_attrs[PRUNED_AT] == 3 and stored.state == TrialState.RUNNING  # told later

    done = SimpleNamespace(callbacks=callbacks, current_epoch=3, is_global_zero=True)
    record = JobRecord(trainer=done)
    record.write(tmp_path / "trial_1", status="ok", metric="metrics/fid", value=30.0)
    result = json.loads((tmp_path / "trial_1" / RESULT_FILE).read_text())
    assert result["status"] == "pruned" and result["epochs"] == 3


def test_the_last_evaluation_is_reported_but_never_pruned(tmp_path: Path) -> None:
    study = journal_study(tmp_path)
    finished_trial(study, {1: 1.0, 2: 1.0})
    number = study.ask().number
    reporter = TrialReporter(
        str(tmp_path / "optuna.journal"), "s", number, optuna.pruners.MedianPruner(1, 0)
    )
    assert reporter.report(9.0, 1, may_prune=True)  # worse than the median: prune
    assert not reporter.report(9.0, 2, may_prune=False)
    assert study.trials[number].intermediate_values == {1: 9.0, 2: 9.0}


def test_a_job_not_started_by_the_sweeper_reports_nothing() -> None:
    pruning = OptunaPruning(storage=None, study_name=None, trial=None, metric="metrics/fid")
    trainer = fake_trainer([GenerativeMetrics(classifier_ckpt=None), pruning], epoch=0, fid=1.0)
    pruning.on_train_epoch_end(trainer, None)
    assert pruning.reporter is None and not trainer.should_stop


# ---------------------------------------------------------------- the sweeper
def sweeper(**settings) -> GanOptunaSweeper:
    defaults = dict(
        study_name="s",
        storage=None,
        direction="minimize",
        n_trials=4,
        n_jobs=None,
        sampler="tpe",
        seed=0,
        n_startup_trials=1,
        pruner="median",
        min_epochs=1,
        params={},
    )
    return GanOptunaSweeper(**{**defaults, **settings})


def job(status: JobStatus, value: object = None) -> JobReturn:
    ret = JobReturn(status=status)
    ret.return_value = value
    return ret


def test_the_sweeper_tells_complete_pruned_and_failed_as_the_jobs_ended(tmp_path: Path) -> None:
    study = journal_study(tmp_path)
    ended = [
        job(JobStatus.COMPLETED, 12.5),
        job(JobStatus.COMPLETED, 30.0),  # pruned: its callback left the attribute
        job(JobStatus.COMPLETED, math.inf),  # failed or diverged: the worst value
        job(JobStatus.FAILED, RuntimeError("boom")),  # raised out of the task
    ]
    trials = [study.ask() for _ in ended]
    trials[1].set_user_attr(PRUNED_AT, 2)
    for trial, ret in zip(trials, ended, strict=True):
        sweeper()._tell(study, study.trials[trial.number], ret)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL]
    assert study.best_value == 12.5


def test_the_sweeper_refuses_bad_settings_before_any_trial() -> None:
    config = OmegaConf.create({"optuna": {"trial": None}, "optimized_metric": "metrics/fid"})
    for settings, expected in (
        ({"sampler": "tpee"}, "ConfigError: hydra.sweeper.sampler=tpee is not a sampler"),
        ({"pruner": "hyper"}, "ConfigError: hydra.sweeper.pruner=hyper is not a pruner"),
        ({"storage": None}, "ConfigError: hydra.sweeper.storage and hydra.sweeper.study_name"),
        ({"storage": "x", "n_trials": 0}, "hydra.sweeper.n_trials=0 must be an integer >= 1"),
    ):
        search = sweeper(**settings)
        search.config = config
        with pytest.raises(CompactHydraException, match=expected):
            search.sweep([])
    search = sweeper(storage="x")
    search.config = OmegaConf.create({"optimized_metric": "metrics/fid"})
    with pytest.raises(
        CompactHydraException, match="run searches with hparams_search=optuna, which adds it"
    ):
        search.sweep([])


def test_trials_at_once_follow_the_launcher() -> None:
    joblib = OmegaConf.create({"_target_": "x.JoblibLauncher", "n_jobs": 2})
    assert parallel_jobs(joblib) == 2
    slurm = OmegaConf.create({"_target_": "x.submitit.SlurmLauncher", "array_parallelism": 16})
    assert parallel_jobs(slurm) == 16
    assert parallel_jobs(OmegaConf.create({"_target_": "x.BasicLauncher"})) == 1


def test_the_plugin_imports_and_registers_without_optuna() -> None:
    """Hydra imports every hydra_plugins module for every command, with or without the extra."""
    code = (
        "import sys\nsys.modules['optuna'] = None\n"
        "from hydra.core.plugins import Plugins\nfrom hydra.core.config_store import ConfigStore\n"
        "Plugins.instance()\n"
        "assert 'gan_optuna.yaml' in ConfigStore.instance().list('hydra/sweeper')\n"
        "from hydra_plugins.gan_lightning_optuna.sweeper import GanOptunaSweeper\n"
        "s = GanOptunaSweeper('s', None, 'minimize', 1, None, 'tpe', 0, 1, 'median', 1, {})\n"
        "try:\n    s.sweep([])\nexcept Exception as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "needs Optuna, which is not installed" in done.stdout
    assert 'pip install -e ".[sweeps]"' in done.stdout


# ---------------------------------------------------------------- the summary of a search
def test_a_pruned_job_is_a_row_of_its_own_after_the_finished_ones(tmp_path: Path) -> None:
    for name, result in (
        ("trial_0", {"status": "ok", "epochs": 3, "value": 40.0}),
        ("trial_1", {"status": "pruned", "epochs": 1, "value": 20.0}),  # an early value
        ("trial_2", {"status": "failed", "reason": "boom", "epochs": 0, "value": None}),
    ):
        (tmp_path / name / ".hydra").mkdir(parents=True)
        (tmp_path / name / RESULT_FILE).write_text(json.dumps(result))
    rows = collect(tmp_path, "metrics/fid")
    assert [(row.job, row.status) for row in rows] == [
        ("trial_0", "ok"),
        ("trial_1", "pruned at epoch 1"),
        ("trial_2", "failed: boom"),
    ]
    assert headline(rows, tmp_path).endswith(": 1 succeeded, 1 pruned, 1 failed")


def test_a_stored_study_of_the_other_direction_or_a_dead_database_stops_the_search_first(
    tmp_path: Path,
) -> None:
    journal = str(tmp_path / "optuna.journal")
    journal_study(tmp_path, direction="maximize")  # made for metrics/is, say
    config = OmegaConf.create(
        {
            "optuna": {"trial": None},
            "optimized_metric": "metrics/fid",
            "hydra": {"sweep": {"dir": str(tmp_path)}, "launcher": {"_target_": "x.Basic"}},
        }
    )
    for storage, expected in (
        (journal, "ConfigError: the study s in its storage was made to maximize"),
        ("postgresql://gan@127.0.0.1:1/none", "RunError: hydra.sweeper.storage=postgresql://"),
    ):
        search = sweeper(storage=storage, params={"optim.d.lr": "interval(1e-5, 1e-3)"})
        search.config = config
        with pytest.raises(CompactHydraException, match=expected):
            search.sweep([])
    stored = optuna.load_study(study_name="s", storage=optuna_search.open_storage(journal))
    assert stored.trials == []  # no trial was asked for


def test_make_dashboard_opens_a_search_by_its_study_name_or_any_storage() -> None:
    def dashboard_line(*variables: str) -> str:
        done = subprocess.run(
            ["make", "-n", "dashboard", *variables], cwd=REPO, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return next(line for line in done.stdout.splitlines() if "optuna-dashboard" in line)

    assert dashboard_line("STUDY=mlp").endswith(
        ".venv/bin/optuna-dashboard outputs/gan/search/mlp/optuna.journal"
    )
    assert dashboard_line("STORAGE=sqlite:///db.sqlite3").endswith(" sqlite:///db.sqlite3")
