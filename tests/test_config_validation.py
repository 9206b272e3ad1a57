"""Config values that cannot work stop the run before any work, naming key, value and range."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from reliability_helpers import CONFIG_DIR, compose_run, run_cli

from gan_lightning.callbacks.metrics import GenerativeMetrics
from gan_lightning.callbacks.samples import SampleGrid
from gan_lightning.callbacks.training_pictures import TrainingPictures
from gan_lightning.config import validate
from gan_lightning.data.datamodule import MNISTDataModule
from gan_lightning.errors import ConfigError, DataError
from gan_lightning.gan.guard import NonFiniteGuard
from gan_lightning.gan.losses import NonSaturatingLoss, WassersteinGPLoss
from gan_lightning.train import train

BAD_VALUES = [
    # (overrides, what the message must say)
    (["optim.g.lr=-0.001"], "optim.g.lr=-0.001 is not allowed; it must be a number > 0"),
    (["optim.d.lr=0"], "optim.d.lr=0 is not allowed; it must be a number > 0"),
    (["optim.d.lr=fast"], "optim.d.lr='fast' is not allowed; it must be a number > 0"),
    (["optim.g.betas=[0.5,1.0]"], "optim.g.betas=[0.5, 1.0] is not allowed; it must be two"),
    (["optim.d=sgd", "optim.d.momentum=-0.9"], "optim.d.momentum=-0.9 is not allowed"),
    (["data.batch_size=0"], "data.batch_size=0 is not allowed; it must be an integer >= 1"),
    (["data.val_fraction=1.0"], "data.val_fraction=1.0 is not allowed; it must be a number in"),
    (["model.image_size=30"], "model.image_size=30 is not allowed; it must be 28 or 32"),
    (["model=lean", "model.width=0"], "model.width=0 is not allowed; it must be an integer >= 1"),
    (["trainer.max_epochs=0"], "trainer.max_epochs=0 is not allowed; it must be an integer >= 1"),
    (["tricks.label_smoothing.real=1.5"], "tricks.label_smoothing.real=1.5 is not allowed"),
    (["tricks.label_smoothing.fake=[0.3,0.1]"], "tricks.label_smoothing.fake=[0.3, 0.1]"),
    (["tricks.label_flip_prob=1.2"], "tricks.label_flip_prob=1.2 is not allowed; it must be a"),
    (["tricks.d_every_n_batches=0"], "tricks.d_every_n_batches=0 is not allowed"),
    (["tricks.ema_decay=1.0"], "tricks.ema_decay=1.0 is not allowed"),
    (["tricks.n_critic=5", "tricks.d_every_n_batches=2"], "pull in opposite directions"),
    (["scheduler.g=step", "scheduler.g.gamma=0"], "scheduler.g.gamma=0 is not allowed"),
    (["guard.nonfinite=ignore"], "guard.nonfinite='ignore' is not allowed; it must be one of"),
    (["metrics.min_class_fraction=2"], "metrics.min_class_fraction=2 is not allowed"),
    (["metrics.max_time_share=0"], "metrics.max_time_share=0 is not allowed; it must be null"),
    (["trainer.max_time=3min"], "trainer.max_time='3min' is not allowed; it must be null or a"),
    # Wrong types, refused by the object that owns each group (Tricks, NonFiniteGuard, the data
    # module, the metrics callback) and collected by validate.
    (["tricks.spectral_norm=maybe"], "tricks.spectral_norm='maybe' is not allowed; it must be"),
    (["tricks.n_critic=2.5"], "tricks.n_critic=2.5 is not allowed; it must be an integer >= 1"),
    (["tricks.classifier_guidance.alpha_per_epoch=nan"], "alpha_per_epoch=nan is not allowed"),
    (["guard.max_skipped_steps=1.5"], "guard.max_skipped_steps=1.5 is not allowed; it must be"),
    (["guard.check_every_step=often"], "guard.check_every_step='often' is not allowed"),
    (["metrics.min_class_fraction=nan"], "metrics.min_class_fraction=nan is not allowed"),
    (["data.split_seed=abc"], "data.split_seed='abc' is not allowed; it must be an integer"),
    (["data.batch_size=2.5"], "data.batch_size=2.5 is not allowed; it must be an integer >= 1"),
    (["data.dataset=CIFAR"], "data.dataset='CIFAR' is not allowed; it must be one of MNIST"),
    (["metrics.num_samples=many"], "metrics.num_samples='many' is not allowed; it must be an"),
    (["metrics.missing_classifier=skip"], "metrics.missing_classifier='skip' is not allowed"),
    (["loss=wgan_gp", "loss.gradient_penalty_weight=nan"], "gradient_penalty_weight=nan is not"),
]


@pytest.mark.parametrize(("overrides", "expected"), BAD_VALUES)
def test_bad_values_name_key_value_and_range(
    tmp_path: Path, tiny_mnist_root: Path, overrides: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError, match="invalid config") as caught:
        validate(compose_run(tmp_path / "run", tiny_mnist_root, overrides))
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "callbacks.sample_grid.every_n_epochs=0",
            "callbacks.sample_grid.every_n_epochs=0 is not allowed; it must be an integer >= 1",
        ),
        (
            "callbacks.training_pictures.interpolation_steps=1",
            "callbacks.training_pictures.interpolation_steps=1 is not allowed; it must be an "
            "integer >= 2 (both endpoints are drawn)",
        ),
        (
            "callbacks.training_pictures.slerp=maybe",
            "callbacks.training_pictures.slerp='maybe' is not allowed; it must be true or false",
        ),
    ],
)
def test_each_callback_checks_its_own_settings(compose_train, override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(compose_train([override]))
    assert str(caught.value) == f"invalid config: {expected}"


def test_every_problem_is_reported_at_once(tmp_path: Path, tiny_mnist_root: Path) -> None:
    overrides = ["optim.g.lr=-1", "data.batch_size=0", "tricks.label_flip_prob=-0.1"]
    with pytest.raises(ConfigError, match="3 problems") as caught:
        validate(compose_run(tmp_path / "run", tiny_mnist_root, overrides))
    for key in ("optim.g.lr=-1", "data.batch_size=0", "tricks.label_flip_prob=-0.1"):
        assert key in str(caught.value)


def test_each_owner_reports_all_of_its_groups_problems_at_once(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    overrides = [
        "tricks.label_flip_prob=2",
        "tricks.r1_gamma=-1",
        "guard.nonfinite=x",
        "guard.max_skipped_steps=-1",
        "data.split_seed=x",
        "data.val_fraction=-0.5",
        "metrics.every_n_epochs=0",
        "metrics.batch_size=0",
    ]
    with pytest.raises(ConfigError, match="8 problems") as caught:
        validate(compose_run(tmp_path / "run", tiny_mnist_root, overrides))
    for override in overrides:
        key, value = override.split("=")
        assert f"{key}={value}" in str(caught.value) or f"{key}='{value}'" in str(caught.value)


def test_a_bad_value_another_group_interpolates_is_reported_once(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """data.image_size is ${model.image_size}: the data module is not asked again."""
    with pytest.raises(ConfigError, match=r"invalid config: model\.image_size=30 is not"):
        validate(compose_run(tmp_path / "run", tiny_mnist_root, ["model.image_size=30"]))


def test_a_key_fed_by_a_good_value_is_still_checked(tmp_path: Path, tiny_mnist_root: Path) -> None:
    """seed=0 is a fine seed and a batch of none: the interpolated key has its own rule."""
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, ["seed=0", "data.batch_size=${seed}"])
    with pytest.raises(ConfigError, match=r"invalid config: data\.batch_size=0 is not allowed"):
        validate(cfg)


def test_the_metrics_group_is_checked_once_though_a_callback_copies_it(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """callbacks.generative_metrics is ${metrics}: one bad value, one line."""
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, ["metrics.every_n_epochs=0"])
    with pytest.raises(ConfigError, match=r"invalid config: metrics\.every_n_epochs=0 is not"):
        validate(cfg)


def test_a_target_that_names_nothing_is_a_config_problem(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    target = "gan_lightning.data.nosuch.MNISTDataModule"
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, [f"data._target_={target}"])
    with pytest.raises(ConfigError, match="invalid config: data._target_=") as caught:
        validate(cfg)
    assert f"data._target_='{target}' names nothing that can be imported" in str(caught.value)


def test_validation_builds_none_of_the_objects_it_checks(
    compose_train, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Their tables are read from the classes; ``train`` builds each object once, later."""

    def built(self: object, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"validate built {type(self).__name__}")

    for owner in (
        MNISTDataModule,
        NonSaturatingLoss,
        WassersteinGPLoss,
        GenerativeMetrics,
        SampleGrid,
        TrainingPictures,
        NonFiniteGuard,
    ):
        monkeypatch.setattr(owner, "__init__", built)
    validate(compose_train(["loss=wgan_gp"]))
    with pytest.raises(ConfigError, match="metrics.seed='x'"):
        validate(compose_train(["metrics.seed=x"]))


def test_each_owner_refuses_what_its_table_refuses_when_built_directly() -> None:
    """A notebook that builds a callback gets the words validate uses, as a ConfigError."""
    with pytest.raises(ConfigError, match=r"^callbacks.sample_grid.every_n_epochs=0 is not"):
        SampleGrid(every_n_epochs=0)
    with pytest.raises(ConfigError, match=r"^callbacks.training_pictures.interpolation_steps=1"):
        TrainingPictures(interpolation_steps=1)
    with pytest.raises(ConfigError, match=r"^metrics.min_class_fraction=2 is not allowed"):
        GenerativeMetrics("x.pt", min_class_fraction=2)


def test_a_bad_callback_setting_ends_in_one_paragraph_not_a_traceback(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """As tricks.n_critic=0 does: the callbacks' settings are checked with every other key."""
    args = ["callbacks.sample_grid.every_n_epochs=0", f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_cli(args, tiny_mnist_root, tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout
    assert (
        "ConfigError: invalid config: callbacks.sample_grid.every_n_epochs=0 is not allowed; "
        "it must be an integer >= 1"
    ) in result.stdout.splitlines()


def test_num_classes_is_refused_where_no_network_reads_it(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """Unconditional models have no model.num_classes: setting one would change nothing."""
    with pytest.raises(ConfigCompositionException, match="num_classes"):
        compose_run(tmp_path / "run", tiny_mnist_root, ["model=dcgan", "model.num_classes=10"])


@pytest.mark.parametrize(
    "overrides",
    [[], *([f"experiment={path.stem}"] for path in sorted((CONFIG_DIR / "experiment").glob("*")))],
)
def test_shipped_configs_are_valid(
    tmp_path: Path, tiny_mnist_root: Path, overrides: list[str]
) -> None:
    validate(compose_run(tmp_path / "run", tiny_mnist_root, overrides))


def test_validation_comes_before_any_data_or_network_work(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = compose_run(run_dir, tmp_path / "no_such_data", ["optim.g.lr=0"])
    with pytest.raises(ConfigError, match="optim.g.lr=0"):  # not the DataError of the root
        train(cfg)
    assert not (run_dir / "tensorboard").exists()


@pytest.mark.parametrize(
    ("overrides", "error", "expected"),
    [
        # Needs the training-set size: checked by the data module before the first step.
        (["data.batch_size=300"], DataError, "data.batch_size=300 is larger than the 256"),
        # Needs the networks: checked when the GAN module is built, before any data is read.
        (["loss=hinge", "tricks.label_smoothing.real=0.9"], ConfigError, "use loss=bce"),
        (["model=dcgan", "model.image_size=28"], ConfigError, "makes 32x32 images"),
    ],
)
def test_values_that_need_data_or_networks_fail_before_training(
    tmp_path: Path, tiny_mnist_root: Path, overrides: list[str], error: type, expected: str
) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(error, match=expected):
        train(compose_run(run_dir, tiny_mnist_root, ["model=dcgan", *overrides]))
    assert not (run_dir / "checkpoints").exists()


def test_wgan_gp_with_a_batchnorm_critic_warns_and_names_the_textbook_fix(
    compose_train,
) -> None:
    """It trains (issue 4: every loss with every architecture), but the user is told why it is
    not the paper's setting and what is."""
    from gan_lightning.build import build_gan_module

    with pytest.warns(UserWarning, match="use model=mlp, fc or cnn"):
        build_gan_module(compose_train(["model=dcgan", "loss=wgan_gp"]))


def test_g_and_d_pick_their_optimizer_from_one_folder(
    tmp_path: Path, tiny_mnist_root: Path
) -> None:
    """docs/training.md's `model=dcgan optim.d=sgd`, verbatim: SGD for D, Adam for G."""
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, ["model=dcgan", "optim.d=sgd"])
    assert cfg.optim.d._target_ == "torch.optim.SGD" and cfg.optim.d.momentum == 0.0
    assert cfg.optim.g._target_ == "torch.optim.Adam" and list(cfg.optim.g.betas) == [0.5, 0.999]
    cfg = compose_run(tmp_path / "run", tiny_mnist_root, ["scheduler.g=step"])
    assert cfg.scheduler.g.step_size == 10 and "d" not in cfg.scheduler


def test_the_per_network_groups_only_point_at_the_shared_files() -> None:
    """A setting written into conf/optim.d/ alone would silently differ between G and D."""
    for group in ("optim", "scheduler"):
        for network in ("g", "d"):
            for path in sorted((CONFIG_DIR / f"{group}.{network}").glob("*.yaml")):
                pointer = OmegaConf.load(path)
                assert list(pointer) == ["defaults"], path
                assert list(pointer.defaults) == [f"/{group}/{path.stem}@_here_"], path
                assert (CONFIG_DIR / group / path.name).is_file(), path
