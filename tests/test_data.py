"""Tests of the data layer: IDX I/O, its error messages, and the MNIST data module."""

from __future__ import annotations

import gzip
import os
import re
import struct
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from gan_lightning.data.datamodule import COMMON_RULES, MNISTDataModule, WholeTensorDataModule
from gan_lightning.data.idx import find_split, load_split, read_idx, write_idx
from gan_lightning.errors import DataError
from gan_lightning.rules import Rule

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_digits(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 28x28 images with balanced labels 0..9: enough for tests of files and batching."""
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8)
    return images, torch.arange(count, dtype=torch.uint8) % 10


def write_split(
    folder: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor, suffix: str = ""
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


def unique_images(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose first two pixels encode their index, so a batch tells where it came from."""
    images, labels = make_digits(count)
    index = torch.arange(count)
    images[:, 0, 0] = (index % 256).to(torch.uint8)
    images[:, 0, 1] = (index // 256).to(torch.uint8)
    return images, labels


def decode_index(batch: torch.Tensor) -> torch.Tensor:
    """Undo unique_images' encoding on float images in [-1, 1] of shape [B, 1, S, S]."""
    pad = (batch.shape[-1] - 28) // 2
    pixels = ((batch[:, 0, pad, pad : pad + 2] + 1) * 127.5).round().long()
    return pixels[:, 0] + 256 * pixels[:, 1]


@pytest.fixture(scope="module")
def unique_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 train and 50 test images, each one distinct, in torchvision's layout."""
    root = tmp_path_factory.mktemp("unique")
    write_split(root / "MNIST" / "raw", "train", *unique_images(300))
    write_split(root / "MNIST" / "raw", "t10k", *unique_images(50))
    return root


def make_module(root: Path, **overrides: object) -> MNISTDataModule:
    kwargs: dict[str, object] = {"root": str(root), "batch_size": 32, "download": False}
    kwargs.update(overrides)
    module = MNISTDataModule(**kwargs)
    module.prepare_data()
    module.setup("fit")
    return module


# ---------------------------------------------------------------- IDX files


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, suffix: str) -> None:
    images, labels = make_digits(30)
    write_idx(tmp_path / f"images{suffix}", images)
    write_idx(tmp_path / f"labels{suffix}", labels)
    assert torch.equal(read_idx(tmp_path / f"images{suffix}"), images)
    assert torch.equal(read_idx(tmp_path / f"labels{suffix}"), labels)
    assert read_idx(tmp_path / f"images{suffix}").dtype == torch.uint8
    is_gzip = (tmp_path / f"images{suffix}").read_bytes()[:2] == b"\x1f\x8b"
    assert is_gzip == (suffix == ".gz")


def test_write_idx_refuses_non_bytes(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="float32"):
        write_idx(tmp_path / "x", torch.zeros(3))


def test_read_idx_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "not-idx"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(DataError, match="magic") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_wrong_dtype(tmp_path: Path) -> None:
    path = tmp_path / "floats"
    path.write_bytes(bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 2) + bytes(8))
    with pytest.raises(DataError, match="0x0d") as err:
        read_idx(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("extra", "found"), [(-5, 28 * 28 * 4 - 5), (3, 28 * 28 * 4 + 3)])
def test_read_idx_truncated_or_padded(tmp_path: Path, extra: int, found: int) -> None:
    path = tmp_path / "images"
    write_idx(path, make_digits(4)[0])
    data = path.read_bytes()
    path.write_bytes(data[:extra] if extra < 0 else data + bytes(extra))
    with pytest.raises(DataError, match=f"promises {28 * 28 * 4} data bytes but it holds {found}"):
        read_idx(path)


def test_read_idx_broken_gzip(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    write_idx(path, make_digits(4)[0])
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataError, match="gzip") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        read_idx(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(err.value)


# ---------------------------------------------------------------- finding and checking splits


def test_find_split_prefers_plain_file_and_raw_folder(tmp_path: Path) -> None:
    images, labels = make_digits(10)
    write_split(tmp_path, "train", images, labels)  # flat copy: looked at last
    write_split(tmp_path / "MNIST" / "raw", "train", images, labels, ".gz")
    write_split(tmp_path / "MNIST" / "raw", "train", images, labels)
    image_file, label_file = find_split(tmp_path, ("MNIST",), "train")
    assert image_file == tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    assert label_file == tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte"


def test_find_split_accepts_gz_only(tmp_path: Path) -> None:
    write_split(tmp_path, "t10k", *make_digits(10), ".gz")
    assert find_split(tmp_path, ("MNIST",), "test")[0].name == "t10k-images-idx3-ubyte.gz"


def test_counts_differ(tmp_path: Path) -> None:
    images, labels = make_digits(20)
    write_split(tmp_path, "train", images, labels[:19])
    with pytest.raises(DataError, match="holds 20 images but label file") as err:
        load_split(tmp_path, ("MNIST",), "train")
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message
    assert "train-labels-idx1-ubyte" in message
    assert "holds 19 labels" in message


def test_wrong_image_size(tmp_path: Path) -> None:
    write_split(tmp_path, "train", torch.zeros(5, 27, 28, dtype=torch.uint8), make_digits(5)[1])
    with pytest.raises(DataError, match=r"shape \[27, 28\], expected \[28, 28\]") as err:
        load_split(tmp_path, ("MNIST",), "train")
    assert str(tmp_path / "train-images-idx3-ubyte") in str(err.value)


def test_labels_out_of_range(tmp_path: Path) -> None:
    images, labels = make_digits(20)
    labels[7] = 10
    write_split(tmp_path, "train", images, labels)
    with pytest.raises(DataError, match="label 10 at index 7") as err:
        load_split(tmp_path, ("MNIST",), "train")
    assert str(tmp_path / "train-labels-idx1-ubyte") in str(err.value)


def test_missing_files_offline_names_folders_and_fix(tmp_path: Path) -> None:
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not a dataset")
    module = MNISTDataModule(root=str(tmp_path), download=False)
    with pytest.raises(DataError) as err:
        module.prepare_data()
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "GAN_DATA_DIR" in message
    assert "data.root=" in message
    assert "data.download=true" in message


def test_missing_root_offline(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError, match="does not exist") as err:
        MNISTDataModule(root=str(root), download=False).prepare_data()
    assert str(root) in str(err.value)


def test_empty_root(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty") as err:
        MNISTDataModule(root=str(tmp_path), download=False).setup("fit")
    assert str(tmp_path) in str(err.value)


def test_root_is_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(torchvision.datasets, "MNIST", lambda *a, **k: calls.append(a))
    root = tmp_path / "file"
    root.write_text("")
    with pytest.raises(DataError, match="is a file, not a folder") as err:
        MNISTDataModule(root=str(root), download=True).prepare_data()
    assert str(root) in str(err.value)
    assert calls == []  # no download can fix this, so none is tried


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_root(tmp_path: Path) -> None:
    root = tmp_path / "locked"
    root.mkdir()
    root.chmod(0)
    try:
        with pytest.raises(DataError, match="not readable") as err:
            MNISTDataModule(root=str(root), download=False).prepare_data()
        assert str(root) in str(err.value)
    finally:
        root.chmod(0o700)


def test_failed_download_names_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        # torchvision's text: every mirror and its error.
        raise RuntimeError(
            "Error downloading train-images-idx3-ubyte.gz:\n"
            "Tried https://ossci-datasets.s3.amazonaws.com/mnist/, got:\n"
            "<urlopen error [Errno -3] Temporary failure in name resolution>\n"
            "Tried http://yann.lecun.com/exdb/mnist/, got:\n"
            "<urlopen error [Errno -3] Temporary failure in name resolution>\n"
        )

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError, match="Downloading MNIST with torchvision failed") as err:
        MNISTDataModule(root=str(tmp_path), download=True).prepare_data()
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "(Error downloading train-images-idx3-ubyte.gz; offline?)" in message
    assert "GAN_DATA_DIR" in message
    assert "http" not in message and "\n" not in message  # no mirror list


def test_download_only_when_missing(
    tmp_path: Path, tiny_mnist_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []

    def fake_mnist(root: str, train: bool, download: bool) -> None:
        calls.append(train)
        prefix = "train" if train else "t10k"
        write_split(Path(root) / "MNIST" / "raw", prefix, *make_digits(100))

    monkeypatch.setattr(torchvision.datasets, "MNIST", fake_mnist)
    MNISTDataModule(root=str(tiny_mnist_root), download=True).prepare_data()
    assert calls == []
    module = make_module(tmp_path, download=True)
    assert calls == [True, False]
    assert module.num_test == 100


# ---------------------------------------------------------------- the data module


def test_batches_shape_dtype_and_range(tiny_mnist_root: Path) -> None:
    module = make_module(tiny_mnist_root)
    batch = next(iter(module.train_dataloader()))
    assert isinstance(batch, tuple)
    images, labels = batch
    assert images.shape == (32, 1, 28, 28)
    assert images.dtype == torch.float32
    assert labels.shape == (32,)
    assert labels.dtype == torch.int64
    assert images.min() == -1.0
    assert images.max() == 1.0
    assert module.real_images("test", 5).shape == (5, 1, 28, 28)
    assert module.num_classes == 10
    assert module.class_names == [str(i) for i in range(10)]


def test_padding_to_32_centres_the_digit(tiny_mnist_root: Path) -> None:
    plain = make_module(tiny_mnist_root).real_images("train")
    padded = make_module(tiny_mnist_root, image_size=32).real_images("train")
    assert padded.shape == (plain.shape[0], 1, 32, 32)
    assert torch.equal(padded[..., 2:30, 2:30], plain)
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (padded[..., border] == -1).all()
    module = make_module(tiny_mnist_root, image_size=32)
    assert next(iter(module.train_dataloader()))[0].shape == (32, 1, 32, 32)


def test_split_sizes_partition_and_seed(unique_root: Path) -> None:
    module = make_module(unique_root, val_fraction=0.25)
    assert (module.num_train, module.num_val, module.num_test) == (225, 75, 50)
    train = decode_index(module.real_images("train"))
    val = decode_index(module.real_images("val"))
    assert sorted(torch.cat([train, val]).tolist()) == list(range(300))
    same = make_module(unique_root, val_fraction=0.25)
    assert torch.equal(decode_index(same.real_images("val")), val)
    other = make_module(unique_root, val_fraction=0.25, split_seed=1)
    assert not torch.equal(decode_index(other.real_images("val")), val)


def test_no_validation_split(unique_root: Path) -> None:
    module = make_module(unique_root, val_fraction=0.0)
    assert (module.num_train, module.num_val) == (300, 0)


def train_epoch(module: MNISTDataModule, epoch: int) -> list[torch.Tensor]:
    loader = module.train_dataloader()
    loader.sampler.set_epoch(epoch)
    return [decode_index(images) for images, _ in loader]


def test_batch_order_is_a_function_of_seed_and_epoch(unique_root: Path) -> None:
    module = make_module(unique_root, batch_size=50)
    first = train_epoch(module, 0)
    assert len(first) == len(module.train_dataloader()) == 270 // 50  # drop_last
    assert all(batch.shape == (50,) for batch in first)
    again = train_epoch(make_module(unique_root, batch_size=50), 0)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    second = train_epoch(module, 1)
    assert not torch.equal(torch.cat(first), torch.cat(second))
    reseeded = train_epoch(make_module(unique_root, batch_size=50, split_seed=3), 0)
    assert not torch.equal(torch.cat(first), torch.cat(reseeded))


def test_keep_last_batch_covers_every_image(unique_root: Path) -> None:
    module = make_module(unique_root, batch_size=50, drop_last=False)
    batches = train_epoch(module, 2)
    assert len(batches) == len(module.train_dataloader()) == 6
    assert batches[-1].shape == (20,)
    train = decode_index(module.real_images("train"))
    assert sorted(torch.cat(batches).tolist()) == sorted(train.tolist())


def test_val_and_test_loaders_are_sequential(unique_root: Path) -> None:
    module = make_module(unique_root, batch_size=16)
    for split, loader in (("val", module.val_dataloader()), ("test", module.test_dataloader())):
        batches = [images for images, _ in loader]
        assert len(loader) == len(batches) == -(-len(module.real_images(split)) // 16)
        assert torch.equal(torch.cat(batches), module.real_images(split))


def test_batch_size_too_large_names_the_key(tiny_mnist_root: Path) -> None:
    with pytest.raises(DataError, match=r"data\.batch_size=240 .* 230 training images"):
        make_module(tiny_mnist_root, batch_size=240)


@pytest.mark.parametrize(
    ("key", "value"), [("val_fraction", 1.0), ("image_size", 30), ("batch_size", 0)]
)
def test_bad_settings_name_the_key(tiny_mnist_root: Path, key: str, value: object) -> None:
    with pytest.raises(DataError, match=f"data.{key}={value}"):
        MNISTDataModule(root=str(tiny_mnist_root), **{key: value})


@pytest.mark.parametrize(
    ("key", "value"),
    [("batch_size", 2.5), ("split_seed", "x"), ("val_fraction", float("nan")), ("download", "no")],
)
def test_settings_of_the_wrong_type_name_the_key(
    tiny_mnist_root: Path, key: str, value: object
) -> None:
    with pytest.raises(DataError, match=re.escape(f"data.{key}={value!r} is not allowed")):
        MNISTDataModule(root=str(tiny_mnist_root), **{key: value})


def test_a_new_source_passes_only_its_own_keys_and_gets_every_problem_at_once() -> None:
    """The base checks the shared keys with the subclass's own, in the order of its RULES."""

    class Source(WholeTensorDataModule):
        RULES = (Rule("data.path", lambda path: path != "", "a file"), *COMMON_RULES)

        def __init__(self, path: str, batch_size: int) -> None:
            super().__init__(
                image_size=28,
                batch_size=batch_size,
                val_fraction=0.0,
                split_seed=0,
                drop_last=True,
                settings={"data.path": path},
            )

    with pytest.raises(DataError) as refused:
        Source(path="", batch_size=0)
    assert str(refused.value).splitlines() == [
        "data.path='' is not allowed; it must be a file",
        "data.batch_size=0 is not allowed; it must be an integer >= 1",
    ]


def test_real_images_count_checked(tiny_mnist_root: Path) -> None:
    with pytest.raises(DataError, match="Asked for 129 real images of the test split"):
        make_module(tiny_mnist_root).real_images("test", 129)


def test_fashion_flat_layout(tmp_path: Path) -> None:
    for prefix, count in (("train", 120), ("t10k", 40)):
        images, labels = make_digits(count)
        with gzip.open(tmp_path / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", count, 28, 28))
            f.write(images.numpy().tobytes())
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    module = make_module(tmp_path, dataset="FashionMNIST", val_fraction=0.5)
    assert (module.num_train, module.num_val, module.num_test) == (60, 60, 40)


@pytest.mark.parametrize(("name", "env"), [("mnist", "GAN_DATA_DIR"), ("fashion_mnist", None)])
def test_yaml_configs_instantiate(
    tiny_mnist_root: Path, monkeypatch: pytest.MonkeyPatch, name: str, env: str | None
) -> None:
    monkeypatch.setenv("GAN_DATA_DIR", str(tiny_mnist_root))
    monkeypatch.setenv("FASHION_MNIST_DIR", str(tiny_mnist_root / "MNIST" / "raw"))
    data = OmegaConf.load(REPO_ROOT / "conf" / "data" / f"{name}.yaml")
    cfg = OmegaConf.create({"paths": {"root_dir": "/unused"}, "model": {"image_size": 32}})
    cfg.data = data
    module = instantiate(cfg.data)
    module.prepare_data()
    module.setup("fit")
    assert module.real_images("train").shape[-1] == 32
    assert len(module.class_names) == 10
    if name == "fashion_mnist":
        assert module.class_names[-1] == "Ankle boot"


class _Recorder(pl.LightningModule):
    """Records which images each training step saw, to compare with the sampler's promise."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.seen: dict[int, list[torch.Tensor]] = {}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        self.seen.setdefault(self.current_epoch, []).append(decode_index(batch[0]).cpu())
        return self.layer(batch[0].mean().view(1, 1)).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


class _ValidatingRecorder(_Recorder):
    """A _Recorder that validates, as the classifier does: counts its validation batches."""

    def __init__(self) -> None:
        super().__init__()
        self.validated = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        assert batch[0].device == self.device
        self.validated += 1


def _short_trainer(accelerator: str = "cpu") -> pl.Trainer:
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


@pytest.mark.parametrize(
    "accelerator",
    [
        "cpu",
        pytest.param(
            "gpu",
            marks=pytest.mark.gpu,  # skipped without CUDA (conftest); run by `pytest -m gpu`
        ),
    ],
)
def test_lightning_sets_the_epoch_and_keeps_data_on_device(
    unique_root: Path, accelerator: str
) -> None:
    module = MNISTDataModule(root=str(unique_root), batch_size=50, download=False)
    recorder = _ValidatingRecorder()
    _short_trainer(accelerator).fit(recorder, datamodule=module)
    reference = make_module(unique_root, batch_size=50)
    for epoch in (0, 1):
        expected = train_epoch(reference, epoch)[:3]
        assert all(torch.equal(a, b) for a, b in zip(recorder.seen[epoch], expected, strict=True))
    device_type = "cuda" if accelerator == "gpu" else "cpu"
    assert module.split_tensors("train")[0].device.type == device_type


def test_lightning_is_offered_a_val_loader_only_with_images_held_out(unique_root: Path) -> None:
    """A GAN run holds none out and has no validation_step: Lightning must not be told it
    passed in a val_dataloader. The classifier holds some out and validates on them."""
    held_none = MNISTDataModule(root=str(unique_root), val_fraction=0.0, download=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _short_trainer().fit(_Recorder(), datamodule=held_none)
    assert [str(w.message) for w in caught if "val_dataloader" in str(w.message)] == []
    held_out = MNISTDataModule(root=str(unique_root), val_fraction=0.25, download=False)
    recorder = _ValidatingRecorder()
    _short_trainer().fit(recorder, datamodule=held_out)
    assert recorder.validated == 2  # one batch (limit_val_batches=1) after each of 2 epochs


def test_shared_mnist_counts(shared_data_root: Path) -> None:
    module = make_module(shared_data_root, batch_size=64)
    num_val = round(6309 * 0.1)
    assert (module.num_train, module.num_val, module.num_test) == (6309 - num_val, num_val, 10000)
    images, labels = next(iter(module.train_dataloader()))
    assert images.shape == (64, 1, 28, 28)
    assert set(labels.tolist()) <= set(range(10))
