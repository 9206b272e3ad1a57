"""``trusted_networks``: sampling and evaluating a checkpoint of the user's own network (issue 24).

A checkpoint names the classes it is rebuilt from, so ``sample`` and ``evaluate`` build only
gan-lightning's networks unless the user lists their own modules, and even then only the network
classes those modules define: never a function, never what they imported from elsewhere.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sampling_helpers import compose_config, make_classifier_file, train_config
from test_packaging import user_config_folder

from gan_lightning import evaluate as evaluate_module
from gan_lightning import sample as sample_module
from gan_lightning.build import build_gan_module
from gan_lightning.errors import CheckpointError, ConfigError
from gan_lightning.evaluate import evaluate
from gan_lightning.generation import load_generator
from gan_lightning.runs.checkpoints import (
    instantiate_network,
    load_checkpoint,
    load_discriminator,
)
from gan_lightning.sample import sample

#: Appended to the docs' ``my_nets.py``: what a trusted module may hold besides its networks.
NOT_NETWORKS = """

from pathlib import Path


def wipe(path):
    Path(path).unlink()
"""


@pytest.fixture
def my_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """docs/install.md's user folder in ``tmp_path``, its ``my_nets`` importable, as with
    ``PYTHONPATH``; the module is imported afresh by each test and forgotten after it."""
    folder = user_config_folder(tmp_path)
    with (tmp_path / "my_nets.py").open("a") as module:
        module.write(NOT_NETWORKS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_nets", raising=False)
    yield folder
    sys.modules.pop("my_nets", None)


@pytest.fixture
def user_ckpt(my_configs: Path, tmp_path: Path, tiny_mnist_root: Path) -> Path:
    """An untrained ``model=tiny`` GAN saved with what ``train`` saves, ``my_nets`` unloaded."""
    overrides = [f"hydra.searchpath=[file://{my_configs}]", "model=tiny"]
    module = build_gan_module(train_config(tmp_path, tiny_mnist_root, overrides))
    path = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "run_config": module.run_config}, path)
    del sys.modules["my_nets"]
    return path


def sample_config(ckpt: Path, out: Path, *overrides: str) -> Any:
    return compose_config("sample", [f"ckpt_path={ckpt}", f"out={out}", "device=cpu", *overrides])


def evaluate_config(ckpt: Path, tmp_path: Path, *overrides: str) -> Any:
    classifier = make_classifier_file(tmp_path / "classifier.pt")
    return compose_config(
        "evaluate",
        [
            f"ckpt_path={ckpt}",
            f"classifier_ckpt={classifier}",
            f"out={tmp_path / 'eval.json'}",
            "num_samples=40",
            "batch_size=20",
            "device=cpu",
            "real_floor=false",
            *overrides,
        ],
    )


def test_a_users_network_is_refused_without_the_opt_in_naming_the_fix(
    user_ckpt: Path, tmp_path: Path
) -> None:
    expected = (
        f"refused to build 'my_nets.TinyGenerator' named in {user_ckpt} [model.generator]: "
        "my_nets.TinyGenerator is not one of gan-lightning's networks; if this is your own "
        "network and you trust this file, add its module: trusted_networks=[my_nets]"
    )
    with pytest.raises(CheckpointError) as caught:
        sample(sample_config(user_ckpt, tmp_path / "s.npz"))
    assert str(caught.value) == expected
    assert not (tmp_path / "s.npz").exists()
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        evaluate(evaluate_config(user_ckpt, tmp_path))
    assert not (tmp_path / "eval.json").exists()
    with pytest.raises(CheckpointError, match=r"\[model.discriminator\]: my_nets.TinyDisc"):
        load_discriminator(user_ckpt)
    assert "my_nets" not in sys.modules, "a module the file names was imported before trusting"
    # Another module trusted already: the fix names the whole list to set.
    with pytest.raises(CheckpointError, match=re.escape("trusted_networks=[their_nets,my_nets]")):
        load_generator(user_ckpt, trusted_networks=["their_nets"])


def test_with_its_module_trusted_the_checkpoint_is_sampled_and_evaluated(
    user_ckpt: Path, tmp_path: Path
) -> None:
    trust = "trusted_networks=[my_nets]"
    out = sample(sample_config(user_ckpt, tmp_path / "s.npz", trust, "num_samples=12"))
    with np.load(out, allow_pickle=False) as data:
        assert data["images"].shape == (12, 28, 28) and "labels" not in data.files
    # rejection.keep rebuilds the user's discriminator too.
    kept = sample(
        sample_config(user_ckpt, tmp_path / "k.npz", trust, "num_samples=6", "rejection.keep=0.5")
    )
    with np.load(kept, allow_pickle=False) as data:
        assert data["images"].shape == (6, 28, 28) and float(data["rejection_keep"]) == 0.5

    report = evaluate(evaluate_config(user_ckpt, tmp_path, trust))
    (row,) = report["runs"]
    assert row["model"] == "tiny" and row["num_fake"] == 40 and np.isfinite(row["fid"])

    generator, _ = load_generator(user_ckpt, trusted_networks=["my_nets"])
    assert type(generator).__module__ == "my_nets" and not generator.training


@pytest.mark.parametrize(
    ("trusted", "target", "arguments", "reason"),
    [
        ("my_nets", "my_nets.wipe", {"path": "VICTIM"}, "is not a network class"),
        ("my_nets", "my_nets.Path", {"_args_": ["VICTIM"]}, "is not a network class"),
        ("my_nets", "my_nets.Path.unlink", {"self": "VICTIM"}, "not an importable module"),
        ("my_nets", "my_nets.nn.Linear", {"in_features": 1, "out_features": 1}, "importable"),
        ("pathlib", "pathlib.Path.unlink", {"self": "VICTIM"}, "not an importable module"),
        ("os", "os.remove", {"_args_": ["VICTIM"]}, "is not a network class"),
        ("my_nets", "my_nets.TinyGen", {}, "my_nets has no TinyGen"),
    ],
)
def test_a_trusted_module_may_name_only_its_network_classes(
    my_configs: Path,
    tmp_path: Path,
    trusted: str,
    target: str,
    arguments: dict[str, Any],
    reason: str,
) -> None:
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    config = {
        key: [str(victim)] if value == ["VICTIM"] else str(victim) if value == "VICTIM" else value
        for key, value in arguments.items()
    }
    with pytest.raises(CheckpointError, match=rf"refused to build '{target}'.*{reason}"):
        instantiate_network({"_target_": target, **config}, "a test file", [trusted])
    assert victim.read_text() == "keep me"


def test_a_function_nested_in_a_trusted_network_config_is_refused(
    user_ckpt: Path, tmp_path: Path
) -> None:
    """Every ``_target_`` is checked, not only the network's own: an argument can name one."""
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    checkpoint = load_checkpoint(user_ckpt)
    checkpoint["run_config"]["model"]["generator"]["hidden"] = {
        "_target_": "my_nets.wipe",
        "path": str(victim),
    }
    tampered = tmp_path / "tampered.ckpt"
    torch.save(checkpoint, tampered)
    with pytest.raises(CheckpointError, match="refused to build 'my_nets.wipe'"):
        sample(sample_config(tampered, tmp_path / "s.npz", "trusted_networks=[my_nets]"))
    assert victim.read_text() == "keep me"


def _must_not_load(*args: object, **kwargs: object) -> None:
    raise AssertionError("a refused request must not load a checkpoint")


@pytest.mark.parametrize(
    ("override", "shown"),
    [
        ("my_nets", "'my_nets'"),  # a string, not a list: iterated it would trust m, y, ...
        ("null", "None"),
        ("[my-nets]", "['my-nets']"),
        ("['']", "['']"),
        ("['my_nets.']", "['my_nets.']"),
        ("[3]", "[3]"),
    ],
)
def test_a_malformed_trusted_networks_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, override: str, shown: str
) -> None:
    monkeypatch.setattr(sample_module, "load_generator", _must_not_load)
    monkeypatch.setattr(evaluate_module, "load_generator", _must_not_load)
    message = rf"^trusted_networks={re.escape(shown)} is not allowed; it must be a list of module"
    ckpt = tmp_path / "never_read.ckpt"
    with pytest.raises(ConfigError, match=message):
        sample(sample_config(ckpt, tmp_path / "s.npz", f"trusted_networks={override}"))
    with pytest.raises(ConfigError, match=message):
        evaluate(compose_config("evaluate", [f"ckpt_path={ckpt}", f"trusted_networks={override}"]))


def test_the_library_loaders_refuse_a_malformed_trusted_networks_too(user_ckpt: Path) -> None:
    with pytest.raises(ConfigError, match="trusted_networks='my_nets' is not allowed"):
        load_generator(user_ckpt, trusted_networks="my_nets")  # type: ignore[arg-type]
    assert "my_nets" not in sys.modules
