"""Every command reports an expected failure the same way: one paragraph, exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import CompactHydraException, InstantiationException
from omegaconf import OmegaConf

from gan_lightning.errors import ConfigError, GanLightningError, expected_error, task_wrapper


def run_command(
    module: str, args: list[str], cwd: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_an_expected_error_becomes_hydras_compact_message() -> None:
    @task_wrapper
    def command(cfg: object) -> None:
        raise ConfigError("data.batch_size=0 is not allowed")

    with pytest.raises(CompactHydraException) as caught:
        command(OmegaConf.create())
    assert str(caught.value) == "ConfigError: data.batch_size=0 is not allowed"


def test_an_expected_error_is_found_under_hydras_instantiation_wrapper() -> None:
    cause = ConfigError("model.width=0 is not allowed")
    wrapped = InstantiationException("Error in call to target")
    wrapped.__cause__ = cause
    assert expected_error(wrapped) is cause
    assert expected_error(RuntimeError("a bug")) is None


def test_a_bug_keeps_its_own_exception_and_traceback() -> None:
    @task_wrapper
    def command(cfg: object) -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        command(OmegaConf.create())


def test_every_error_class_of_the_project_derives_from_the_base() -> None:
    import gan_lightning.errors as errors
    from gan_lightning.data.idx import MissingDataError
    from gan_lightning.runs.checkpoint_io import CheckpointWriteError

    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and value.__module__ == errors.__name__
    ]
    assert len(classes) >= 9
    for error_class in [*classes, CheckpointWriteError, MissingDataError]:
        assert issubclass(error_class, GanLightningError), error_class


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        (
            "gan_lightning.train",
            ["ckpt_path={tmp}/missing.ckpt", "hydra.run.dir={tmp}/run", "data.root={data}"],
            "RunError: ckpt_path={tmp}/missing.ckpt: no checkpoint at",
        ),
        (
            "gan_lightning.sample",
            ["ckpt_path={tmp}/missing.ckpt"],
            "CheckpointError: checkpoint {tmp}/missing.ckpt does not exist",
        ),
        (
            "gan_lightning.evaluate",
            ["ckpt_path={tmp}/missing.ckpt"],
            "CheckpointError: ckpt_path={tmp}/missing.ckpt: no checkpoint at",
        ),
        (
            "gan_lightning.train_classifier",
            ["data.root={tmp}/empty", "data.download=false", "hydra.run.dir={tmp}/run"],
            "DataError: No train files",
        ),
    ],
)
def test_each_command_reports_an_expected_error_without_a_traceback(
    module: str, args: list[str], message: str, tmp_path: Path, tiny_mnist_root: Path
) -> None:
    (tmp_path / "empty").mkdir()
    fill = {"tmp": tmp_path, "data": tiny_mnist_root}
    result = run_command(module, [arg.format(**fill) for arg in args], tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert message.format(**fill) in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout


def test_hydra_full_error_still_shows_the_traceback(tmp_path: Path) -> None:
    result = run_command(
        "gan_lightning.sample",
        [f"ckpt_path={tmp_path}/missing.ckpt"],
        tmp_path,
        HYDRA_FULL_ERROR="1",
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "CheckpointError" in result.stderr
