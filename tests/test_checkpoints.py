"""Checkpoints: a stranger's file cannot run code, and a mismatch names the key that differs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch
from reliability_helpers import compose_run

from gan_lightning.classifier import load_classifier
from gan_lightning.errors import CheckpointError
from gan_lightning.generation import load_generator
from gan_lightning.runs.checkpoints import instantiate_network, load_checkpoint
from gan_lightning.train import train


class RunsCode:
    """Unpickling this runs ``touch <marker>``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory, tiny_mnist_root: Path) -> Path:
    """One finished epoch of the tiny MLP GAN; tests copy what they change."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    train(compose_run(run_dir, tiny_mnist_root, ["trainer.max_epochs=1"]))
    return run_dir


def resume_overrides(checkpoint: Path, *extra: str) -> list[str]:
    return ["trainer.max_epochs=2", f"ckpt_path={checkpoint}", *extra]


def plant_malicious_pickle(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": RunsCode(marker)}, path)
    return path, marker


def test_a_malicious_pickle_is_refused_everywhere_a_file_is_loaded(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    evil, marker = plant_malicious_pickle(tmp_path)
    loaders = {
        "load_checkpoint": lambda: load_checkpoint(evil),
        "load_generator": lambda: load_generator(evil),
        "load_classifier": lambda: load_classifier(evil),
        "train resume": lambda: train(
            compose_run(tmp_path / "run", tiny_mnist_root, resume_overrides(evil))
        ),
    }
    for name, load in loaders.items():
        with pytest.raises(CheckpointError, match="refused to load"):
            load()
        assert not marker.exists(), f"{name} ran the file's code"


def test_a_network_config_naming_a_foreign_function_is_refused(
    tmp_path: Path, trained_run: Path
) -> None:
    """weights_only stops pickled code, but the saved config names what to build: Hydra's
    blocklist lets ``pathlib.Path.unlink`` through, so the project allows only its networks."""
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    checkpoint = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    checkpoint["run_config"]["model"]["generator"] = {
        "_target_": "gan_lightning.networks.mlp.MLPGenerator",
        # Plain instantiate would build Path(victim) and call unlink on it: the file is gone.
        "latent_dim": {
            "_target_": "pathlib.Path.unlink",
            "self": {"_target_": "pathlib.Path", "_args_": [str(victim)]},
        },
    }
    tampered = tmp_path / "tampered.ckpt"
    torch.save(checkpoint, tampered)
    with pytest.raises(CheckpointError, match="refused to build 'pathlib.Path.unlink'"):
        load_generator(tampered)
    assert victim.read_text() == "keep me"
    for target in ("builtins.eval", "gan_lightning.networks.cgan.torch.save"):
        with pytest.raises(CheckpointError, match=f"refused to build '{target}'"):
            instantiate_network({"_target_": target, "_args_": ["x", "y"]}, "a test config")
    generator = instantiate_network({"_target_": "gan_lightning.networks.mlp.MLPGenerator"}, "ok")
    assert generator.latent_dim == 100


def test_resuming_with_another_architecture_names_the_keys(
    tmp_path: Path, tiny_mnist_root: Path, trained_run: Path
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, resume_overrides(last, "model=fc"))
    with pytest.raises(CheckpointError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "different architecture or config" in message
    assert "model.name: checkpoint has 'mlp', this run has 'fc'" in message
    assert "model.latent_dim: checkpoint has 100, this run has 64" in message
    assert "missing" not in message, "no wall of missing keys"


def test_a_state_dict_that_does_not_fit_gives_one_line_per_kind_of_mismatch(
    tmp_path: Path, tiny_mnist_root: Path, trained_run: Path
) -> None:
    """Same config, edited weights (another tool, another version): Lightning's strict load
    would list every key; the module reports expected vs found."""
    checkpoint = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    weights = checkpoint["state_dict"]
    weights["generator.net.0.weight"] = torch.zeros(3, 3)
    del weights["discriminator.net.1.bias"]
    edited = tmp_path / "edited.ckpt"
    torch.save(checkpoint, edited)
    with pytest.raises(CheckpointError) as caught:
        train(compose_run(tmp_path / "run", tiny_mnist_root, resume_overrides(edited)))
    message = str(caught.value)
    assert "generator.net.0.weight: expected (32, 100), found (3, 3)" in message
    assert "1 missing, first 'discriminator.net.1.bias'" in message


def test_other_changed_settings_are_warned_about_and_the_run_resumes(
    tmp_path: Path,
    tiny_mnist_root: Path,
    trained_run: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    last = trained_run / "checkpoints" / "last.ckpt"
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, resume_overrides(last, "optim.g.lr=0.001"))
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        train(cfg)
    assert "optim.g.lr: checkpoint has 0.0002, this run has 0.001" in caplog.text
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")["epoch"] == 1


def test_checkpoints_hold_only_plain_data(trained_run: Path) -> None:
    """RNG states and counters are tensors, lists and numbers: loadable with weights_only."""
    checkpoint = load_checkpoint(trained_run / "checkpoints" / "last.ckpt")
    states = checkpoint["callbacks"]["RandomStates"]
    assert isinstance(states["torch"], torch.Tensor)
    assert states["numpy"][0] == "MT19937" and len(states["numpy"][1]) == 624
    assert len(states["python"][1]) == 625
    assert checkpoint["gan_counters"] == {"d_steps": 8, "g_steps": 8, "skipped_steps": 0}
