"""The package as a user installs it: a wheel in a fresh virtual environment, whose console
commands run from an empty folder, on configs shipped inside the wheel and on a config folder of
the user's own (docs/install.md): their own network trains, and its checkpoint is sampled and
evaluated once they trust its module.

The slow test reuses this environment's dependencies instead of downloading them: the fresh
environment gets only the wheel, and then a ``.pth`` file pointing at this environment's
site-packages, which Python reads after its own (so the wheel's copy of the package is the one
imported, which the test checks).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: What the wheel is built from; copied first, so the build writes nothing into the checkout.
SOURCES = ("pyproject.toml", "README.md", "conf", "gan_lightning", "hydra_plugins")
#: A GAN run of seconds: six batches of the MLP GAN, metrics on few samples, no pictures.
TINY_RUN = (
    "trainer=debug",
    "data.batch_size=32",
    "callbacks.progress_bar=null",
    "callbacks.training_pictures=null",
)
MY_NETS = """
from torch import nn

from gan_lightning.networks.layers import Discriminator, Generator, Reshape


class TinyGenerator(Generator):
    def __init__(self, latent_dim: int = 64, hidden: int = 256, latent_prior: str = "gaussian"):
        net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 28 * 28), nn.Tanh(), Reshape(1, 28, 28),
        )
        super().__init__(latent_dim, 28, net, latent_prior=latent_prior)


class TinyDiscriminator(Discriminator):
    def __init__(self, hidden: int = 256):
        net = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1)
        )
        super().__init__(28, net)
"""
MY_MODEL = """
name: tiny
image_size: 28
latent_dim: 64
latent_prior: gaussian
init: default
generator:
  _target_: my_nets.TinyGenerator
  latent_dim: ${..latent_dim}
  latent_prior: ${..latent_prior}
  hidden: 256
discriminator:
  _target_: my_nets.TinyDiscriminator
  hidden: 256
"""
MY_RECIPE = """# @package _global_
defaults:
  - override /model: tiny
  - override /loss: hinge

task_name: my_recipe
seed: 7
optim:
  g: {lr: 4.0e-4}
"""
WHERE_FROM = """
import importlib.resources, json, pkgutil, gan_lightning, hydra_plugins
print(json.dumps({
    "package": gan_lightning.__file__,
    "configs": str(importlib.resources.files("gan_lightning.conf")),
    "sweeper": [m.module_finder.path for m in pkgutil.iter_modules(hydra_plugins.__path__)
                if m.name == "gan_lightning_optuna"],
}))
"""


def test_every_folder_of_modules_is_a_listed_package() -> None:
    """pyproject.toml lists the packages (setuptools cannot find ``conf/`` under its installed
    name), so a new folder of modules must be added there or the wheel leaves it out."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library of 3.11+")
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        ".".join(module.parent.relative_to(REPO).parts)
        for top in ("gan_lightning", "hydra_plugins")
        for module in (REPO / top).rglob("*.py")
    }
    expected = folders | {"gan_lightning.conf", "hydra_plugins"}
    listed = set(setuptools["packages"])
    assert not expected - listed, f"add {sorted(expected - listed)} to pyproject.toml's packages"
    assert not listed - expected, f"pyproject.toml lists {sorted(listed - expected)}: no folder"
    assert setuptools["package-dir"] == {"gan_lightning.conf": "conf"}


def user_config_folder(folder: Path) -> Path:
    """A user's folder as docs/install.md lays it out: their networks and their configs."""
    (folder / "my_nets.py").write_text(MY_NETS)
    (folder / "my_configs" / "model").mkdir(parents=True)
    (folder / "my_configs" / "model" / "tiny.yaml").write_text(MY_MODEL)
    (folder / "my_configs" / "experiment").mkdir()
    (folder / "my_configs" / "experiment" / "my_recipe.yaml").write_text(MY_RECIPE)
    return folder / "my_configs"


def test_a_user_network_from_a_user_config_folder_validates_and_builds(
    tmp_path: Path, compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing in the checks or the build is limited to the package's own networks."""
    from gan_lightning.build import build_gan_module
    from gan_lightning.config import validate

    folder = user_config_folder(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = compose_train([f"hydra.searchpath=[file://{folder}]", "experiment=my_recipe"])
    validate(cfg)
    module = build_gan_module(cfg)
    assert type(module.generator).__module__ == "my_nets"
    assert cfg.loss._target_.endswith("HingeLoss") and cfg.task_name == "my_recipe"


def test_a_mistyped_option_is_refused_listing_the_users_options_too(
    tmp_path: Path, compose_train
) -> None:
    """docs/install.md: Hydra's refusal lists the options of our configs and the user's folder."""
    from hydra.errors import MissingConfigException

    folder = user_config_folder(tmp_path)
    with pytest.raises(MissingConfigException) as refused:
        compose_train([f"hydra.searchpath=[file://{folder}]", "model=tiy"])
    said = str(refused.value)
    assert "Could not find 'model/tiy'" in said
    assert "\tmlp\n" in said and "\ttiny\n" in said  # ours and theirs


def test_a_sweep_over_a_users_option_passes_the_sweep_checks(tmp_path: Path, compose_train) -> None:
    """``-m --config-dir my_configs model=tiny,mlp``: Hydra lists the folder among its sources."""
    from hydra.conf import ConfigSourceInfo
    from omegaconf import open_dict, read_write

    from gan_lightning.sweeps.preflight import search_space_problem

    folder = user_config_folder(tmp_path)
    cfg = compose_train()
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.overrides.task = ["model=tiny,mlp"]
        assert "no option tiny" in search_space_problem(cfg)
        source = ConfigSourceInfo(path=str(folder), schema="file", provider="command-line")
        cfg.hydra.runtime.config_sources.append(source)
    assert search_space_problem(cfg) is None


def build_wheel(folder: Path) -> Path:
    source = folder / "source"
    source.mkdir(parents=True)
    caches = shutil.ignore_patterns("__pycache__")
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=caches)
        else:
            shutil.copy2(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    command = [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", "dist", "."]
    subprocess.run(command, cwd=source, check=True, capture_output=True, timeout=120)
    (wheel,) = (source / "dist").glob("gan_lightning-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> None:
    """The wheel alone into a new environment, then this environment's site-packages behind it.

    The ``.pth`` comes last: pip, seeing the editable install through it, would try to replace it.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", str(python)]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=120,
    )
    site_packages = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site_packages) / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")


def run(
    command: list[str | Path], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}"
    return result


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_its_commands_run_from_an_empty_folder(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    wheel = build_wheel(tmp_path / "build")
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {path.relative_to(REPO).as_posix() for path in (REPO / "conf").rglob("*.yaml")}
    assert {f"gan_lightning/{name}" for name in configs} <= names
    assert "hydra_plugins/gan_lightning_optuna/sweeper.py" in names
    assert not any(name.startswith("conf/") for name in names)

    venv = tmp_path / "venv"
    install(wheel, venv)
    work = tmp_path / "work"  # the user's folder: empty, and not the checkout
    work.mkdir()
    unset = ("PYTHONPATH", "GAN_PROJECT_ROOT", "HYDRA_FULL_ERROR")
    env = {key: value for key, value in os.environ.items() if key not in unset}
    env["GAN_DATA_DIR"] = str(tiny_mnist_root)
    bin_dir = venv / "bin"

    where = json.loads(run([bin_dir / "python", "-c", WHERE_FROM], work, env).stdout)
    assert Path(where["package"]).is_relative_to(venv), where
    assert Path(where["configs"]).is_relative_to(venv), where
    assert (Path(where["configs"]) / "train.yaml").is_file()
    assert len(where["sweeper"]) == 1 and Path(where["sweeper"][0]).is_relative_to(venv), where

    # The classifier lands in outputs/classifier/, where the GAN's metrics look by default.
    # (classifier.yaml sets 40 epochs after trainer=debug's 2: one is asked for here.)
    classifier = ["trainer=debug", "trainer.max_epochs=1", "data.batch_size=32"]
    run([bin_dir / "gan-train-classifier", *classifier, "callbacks.progress_bar=null"], work, env)
    assert (work / "outputs" / "classifier" / "MNIST_classifier.pt").is_file()
    metrics = ["metrics.num_samples=50", "metrics.final_num_samples=100", "metrics.batch_size=50"]
    run([bin_dir / "gan-train", "model=mlp", *TINY_RUN, *metrics], work, env)
    (checkpoint,) = work.glob("outputs/gan/runs/*/checkpoints/last.ckpt")
    assert (checkpoint.parents[1] / "metrics.json").is_file()
    sample = ["num_samples=16", "out=samples.npz"]
    run([bin_dir / "gan-sample", f"ckpt_path={checkpoint}", *sample], work, env)
    assert (work / "samples.npz").is_file()
    evaluate = ["num_samples=100", "batch_size=50", "real_floor=false"]
    run([bin_dir / "gan-evaluate", f"ckpt_path={checkpoint}", *evaluate], work, env)
    assert checkpoint.with_suffix(".metrics.json").is_file()

    # A user's own network and experiment, kept in their folder, not in the package.
    user_config_folder(work)
    mine = [bin_dir / "gan-train", "--config-dir", "my_configs", "experiment=my_recipe"]
    no_metrics = "callbacks.generative_metrics=null"
    user_env = {**env, "PYTHONPATH": str(work)}
    result = run([*mine, *TINY_RUN, no_metrics], work, user_env)
    assert "TinyGenerator" in result.stdout
    (user_checkpoint,) = work.glob("outputs/my_recipe/runs/*/checkpoints/last.ckpt")
    # Its checkpoint names my_nets' classes: sampled and evaluated once the user trusts them.
    trust = [f"ckpt_path={user_checkpoint}", "trusted_networks=[my_nets]"]
    run([bin_dir / "gan-sample", *trust, "num_samples=16", "out=mine.npz"], work, user_env)
    assert (work / "mine.npz").is_file()
    run([bin_dir / "gan-evaluate", *trust, *evaluate], work, user_env)
    (row,) = json.loads(user_checkpoint.with_suffix(".metrics.json").read_text())["runs"]
    assert row["model"] == "tiny" and row["num_fake"] == 100
