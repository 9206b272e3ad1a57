"""The user's own images: ``data=folder`` and ``data=npz``, their cache, and what they refuse.

Every folder and file is made here, a few tiny images in ``tmp_path``; nothing needs MNIST.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from metrics_helpers import compose_config
from omegaconf import OmegaConf
from PIL import Image

from gan_lightning.classifier import save_classifier
from gan_lightning.data import folder as folder_module
from gan_lightning.data import images as images_module
from gan_lightning.data.datamodule import NO_LABEL, WholeTensorDataModule
from gan_lightning.data.folder import ImageFolderDataModule
from gan_lightning.data.npz import NpzDataModule
from gan_lightning.data.splits import hold_out
from gan_lightning.errors import CheckpointError, DataError, EvaluateError
from gan_lightning.generation import write_samples
from gan_lightning.metrics.suite import add_real_as_fake, build_suite
from gan_lightning.networks.digit_cnn import MNISTClassifier
from gan_lightning.train_classifier import network_config

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------- builders
def pattern(label: int, index: int, size: tuple[int, int] = (28, 28)) -> np.ndarray:
    """A gray image that tells its class (a bar's row) and its index (a pixel's value)."""
    height, width = size
    pixels = np.zeros((height, width), np.uint8)
    row = 2 + 3 * label
    pixels[row : row + 2, 4 : width - 4] = 255
    pixels[-1, -1] = index
    return pixels


def write_image(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def class_folder(root: Path, counts: dict[str, int], size: tuple[int, int] = (28, 28)) -> Path:
    """``root/<class>/<n>.png`` for each class, ``counts[class]`` images each."""
    for label, (name, count) in enumerate(counts.items()):
        for index in range(count):
            write_image(root / name / f"{index:03d}.png", pattern(label, index, size))
    return root


def flat_folder(root: Path, count: int) -> Path:
    for index in range(count):
        write_image(root / f"{index:03d}.png", pattern(index % 3, index))
    return root


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every entry below ``root`` (folders too) with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    } | {".": (0, root.stat().st_mtime_ns)}


def folder_data(root: Path, tmp_path: Path, **settings: object) -> ImageFolderDataModule:
    settings = {"batch_size": 2, "cache_dir": str(tmp_path / "cache"), **settings}
    module = ImageFolderDataModule(str(root), **settings)
    module.prepare_data()
    module.setup("fit")
    return module


def npz_data(path: Path, **settings: object) -> NpzDataModule:
    module = NpzDataModule(str(path), batch_size=2, **settings)
    module.setup("fit")
    return module


def marks(images: torch.Tensor) -> list[int]:
    """The index pixel of uint8 images [N, 1, 28, 28]."""
    return images[:, 0, -1, -1].tolist()


@pytest.fixture
def digits(tmp_path: Path) -> Path:
    """Three classes, ten 28x28 images each, sorted names not in creation order."""
    return class_folder(tmp_path / "digits", {"zero": 10, "one": 10, "two": 10})


# ---------------------------------------------------------------------------------- folders
def test_class_folders_are_the_labels_and_a_share_of_each_is_held_out(
    digits: Path, tmp_path: Path
) -> None:
    module = folder_data(digits, tmp_path, test_fraction=0.2)
    assert module.class_names == ["one", "two", "zero"]  # sorted: the labels' order
    assert (module.num_train, module.num_val, module.num_test) == (24, 0, 6)
    images, labels = module.split_tensors("test")
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]  # every class, the same share
    train_images, train_labels = module.split_tensors("train")
    # A bar on row 2 + 3 * (creation order) tells each image's folder: labels follow names.
    rows = {"zero": 2, "one": 5, "two": 8}
    for image, label in zip(train_images, train_labels, strict=True):
        assert image[0, rows[module.class_names[label]], 10] == 255
    again = folder_data(digits, tmp_path, test_fraction=0.2)
    assert torch.equal(again.split_tensors("test")[0], images)  # a fixed split
    other = folder_data(digits, tmp_path, test_fraction=0.2, split_seed=1)
    assert not torch.equal(other.split_tensors("test")[0], images)


def test_train_and_test_folders_are_the_split(tmp_path: Path) -> None:
    root = tmp_path / "split"
    class_folder(root / "train", {"cat": 3, "dog": 2})
    class_folder(root / "test", {"cat": 1, "dog": 1})
    module = folder_data(root, tmp_path, val_fraction=0.2)
    assert module.class_names == ["cat", "dog"]
    assert (module.num_train, module.num_val, module.num_test) == (4, 1, 2)
    assert module.split_tensors("test")[1].tolist() == [0, 1]


def test_a_flat_folder_is_unlabeled_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        module = folder_data(flat_folder(tmp_path / "flat", 10), tmp_path)
    assert not module.labeled and module.class_names == []
    assert set(module.split_tensors("train")[1].tolist()) == {NO_LABEL}
    assert "has no labels" in caplog.text and "classifier-based metrics" in caplog.text
    module.check_generator(num_classes=0, channels=1)  # an unconditional GAN trains on it
    with pytest.raises(
        DataError, match=r"conditional model \(model.num_classes=10\) needs labeled"
    ):
        module.check_generator(num_classes=10, channels=1)
    with pytest.raises(DataError, match="Training a classifier needs labeled images"):
        network_config(OmegaConf.create({"network": {"_target_": "x"}}), module)


def test_rgb_resized_and_padded(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for name in ("red", "blue"):
        for index in range(3):
            pixels = np.zeros((40, 64, 3), np.uint8)  # not square, not 28
            pixels[..., 0 if name == "red" else 2] = 200
            write_image(root / name / f"{index}.png", pixels)
    module = folder_data(root, tmp_path, channels=3, image_size=32)
    images = module.split_tensors("train")[0]
    assert images.shape[1:] == (3, 32, 32) and images.dtype == torch.uint8
    assert (images[:, :, :2] == 0).all()  # 2 px of background around the 28x28 image
    red = images[module.split_tensors("train")[1] == module.class_names.index("red")]
    assert (red[:, 0, 2:30, 2:30] == 200).all() and (red[:, 2, 2:30, 2:30] == 0).all()
    with pytest.raises(DataError, match=r"draws 1-channel ones.*model=dcgan28"):
        module.check_generator(num_classes=0, channels=1)
    assert network_config(OmegaConf.create({"network": {"_target_": "x"}}), module) == {
        "_target_": "x",
        "num_classes": 2,
        "channels": 3,
    }


def test_conditional_model_must_have_the_folders_classes(digits: Path, tmp_path: Path) -> None:
    module = ImageFolderDataModule(str(digits), cache_dir=str(tmp_path / "cache"))
    module.check_generator(num_classes=3, channels=1)
    with pytest.raises(DataError, match=r"3 classes \(one, two, zero\); add model.num_classes=3"):
        module.check_generator(num_classes=10, channels=1)


# ---------------------------------------------------------------------------------- the cache
def test_the_second_load_comes_from_the_cache(
    digits: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = folder_data(digits, tmp_path)
    (cached,) = (tmp_path / "cache").glob("*.npz")
    assert cached.name.startswith("digits-")

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded although the cache holds the folder")

    monkeypatch.setattr(folder_module, "decode_files", no_decoding)
    second = folder_data(digits, tmp_path)
    for split in ("train", "test"):
        assert torch.equal(first.split_tensors(split)[0], second.split_tensors(split)[0])


def test_a_changed_folder_or_setting_is_decoded_again(digits: Path, tmp_path: Path) -> None:
    folder_data(digits, tmp_path)
    image = digits / "one" / "000.png"
    write_image(image, pattern(0, 99))
    os.utime(image, ns=(1, 1))  # a new mtime, whatever the file system's resolution
    module = folder_data(digits, tmp_path)
    assert 99 in marks(torch.cat([module.split_tensors(s)[0] for s in ("train", "test")]))
    # The older file of the folder is gone; another setting has its own file beside it.
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    folder_data(digits, tmp_path, channels=3)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_a_broken_cache_file_is_rebuilt_not_trusted(
    digits: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = folder_data(digits, tmp_path)
    (cached,) = (tmp_path / "cache").glob("*.npz")
    data = cached.read_bytes()
    if damage == "truncate":
        cached.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        cached.write_bytes(data[:100] + bytes(len(data) - 100))
    else:
        np.savez(cached.open("wb"), images=np.zeros((30, 1, 28, 28), np.uint8), key=np.array("x"))
    with caplog.at_level(logging.WARNING, logger="gan_lightning"):
        second = folder_data(digits, tmp_path)
    assert "Decoding the images again" in caplog.text
    assert torch.equal(first.split_tensors("train")[0], second.split_tensors("train")[0])
    assert folder_data(digits, tmp_path).num_train == first.num_train  # rewritten whole
    assert not list((tmp_path / "cache").glob(".*partial"))


def test_the_cache_is_never_put_in_the_data_folder(digits: Path) -> None:
    with pytest.raises(DataError, match=r"data.cache_dir=.* lies inside data.root"):
        ImageFolderDataModule(str(digits), cache_dir=str(digits / "cache"))


@pytest.mark.slow  # forks two decoding processes
def test_parallel_decoding_gives_the_same_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = flat_folder(tmp_path / "many", 12)
    paths = sorted(root.iterdir())
    monkeypatch.setattr(images_module, "MIN_FILES_FOR_POOL", 0)
    monkeypatch.setattr(images_module, "CHUNK_SIZE", 5)
    done: list[int] = []
    parallel = images_module.decode_files(paths, 28, 1, True, workers=2, advance=done.append)
    serial = images_module.decode_files(paths, 28, 1, True, workers=1)
    assert np.array_equal(parallel, serial) and sorted(done) == [2, 5, 5]
    paths[7].write_bytes(paths[7].read_bytes()[:60])
    with pytest.raises(DataError, match=f"Cannot read image {paths[7]}"):
        images_module.decode_files(paths, 28, 1, True, workers=2)


# ---------------------------------------------------------------------------------- bad folders
def bad_folders(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of broken folder, and the words of its refusal."""
    empty = tmp_path / "empty"
    empty.mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    truncated = class_folder(tmp_path / "truncated", {"a": 3, "b": 3})
    broken = truncated / "b" / "001.png"
    broken.write_bytes(broken.read_bytes()[:60])
    mixed = class_folder(tmp_path / "mixed", {"a": 3})
    write_image(mixed / "a" / "big.png", pattern(0, 0, (30, 30)))
    single = class_folder(tmp_path / "single", {"a": 3, "b": 1})
    loose = class_folder(tmp_path / "loose", {"a": 3})
    write_image(loose / "stray.png", pattern(0, 0))
    half = class_folder(tmp_path / "half" / "train", {"a": 3}).parent
    hollow = class_folder(tmp_path / "hollow", {"a": 3})
    (hollow / "b" / "empty").mkdir(parents=True)
    return {
        "empty": (empty, f"No images in {empty}"),
        "truncated": (truncated, f"Cannot read image {broken} .*Replace or delete it"),
        "mixed sizes": (mixed, f"{mixed / 'a' / 'big.png'} is 30x30, but with data.resize=false"),
        "single image": (single, f"Class folder {single / 'b'} holds a single image"),
        "loose files": (loose, r"both image files \(stray.png, ...\) and folders \(a/, ...\)"),
        "train without test": (half, "a folder with its own split holds train/ and test/"),
        "empty class": (hollow, f"Class folder {hollow / 'b'} holds no images"),
        "missing": (tmp_path / "nowhere", "does not exist"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "empty",
        "truncated",
        "mixed sizes",
        "single image",
        "loose files",
        "train without test",
        "empty class",
        "missing",
    ],
)
def test_bad_folders_are_refused_naming_the_file(tmp_path: Path, kind: str) -> None:
    root, message = bad_folders(tmp_path / "data")[kind]
    before = snapshot(root) if root.exists() else None
    with pytest.raises(DataError, match=message):
        folder_data(root, tmp_path, resize=False)
    if before is not None:
        assert snapshot(root) == before
    assert not list((tmp_path / "cache").glob("*.npz"))


def test_bad_settings_name_the_key(digits: Path) -> None:
    with pytest.raises(DataError) as refused:
        ImageFolderDataModule(str(digits), channels=2, test_fraction=0.0, decode_workers=-1)
    lines = str(refused.value).splitlines()
    assert [line.split("=")[0] for line in lines] == [
        "data.channels",
        "data.test_fraction",
        "data.decode_workers",
    ]
    with pytest.raises(DataError, match="data.root=None is not allowed"):
        ImageFolderDataModule()


# ---------------------------------------------------------------------------------- npz files
def test_a_sample_file_trains_as_it_was_written(tmp_path: Path) -> None:
    """``python -m gan_lightning.sample``'s format, written by its own writer, reads back."""
    labels = torch.arange(20) % 4
    write_samples(tmp_path / "samples.npz", torch.rand(20, 1, 28, 28) * 2 - 1, labels, nrow=10)
    module = npz_data(tmp_path / "samples.npz", test_fraction=0.25)
    assert module.class_names == ["0", "1", "2", "3"]
    assert (module.num_train, module.num_test) == (16, 4)
    train, test = hold_out(labels, 0.25, 0, "samples")
    assert torch.equal(module.split_tensors("test")[1], labels[test])
    # Exactly the pixels written: the file's uint8 is the inverse of the data's scaling.
    written = torch.from_numpy(np.load(tmp_path / "samples.npz")["images"])
    assert torch.equal(module.split_tensors("train")[0][:, 0], written[train])


def test_a_test_file_and_rgb_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train = {"images": rng.integers(0, 256, (6, 28, 28, 3), dtype=np.uint8)}
    np.savez(tmp_path / "train.npz", **train, labels=np.array([0, 1, 0, 1, 0, 1]))
    np.savez(tmp_path / "test.npz", images=train["images"][:2], labels=np.array([1, 0]))
    module = npz_data(
        tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"), channels=3, image_size=32
    )
    assert (module.num_train, module.num_test) == (6, 2)
    assert module.split_tensors("train")[0].shape == (6, 3, 32, 32)
    gray = npz_data(tmp_path / "train.npz", test_path=str(tmp_path / "test.npz"))
    assert gray.split_tensors("train")[0].shape == (6, 1, 28, 28)  # converted, as files are
    np.savez(tmp_path / "unlabeled.npz", images=train["images"][:, :14, :14])
    flat = npz_data(tmp_path / "unlabeled.npz", channels=3)
    assert not flat.labeled and flat.split_tensors("train")[0].shape == (5, 3, 28, 28)


def bad_npz(tmp_path: Path) -> dict[str, tuple[Path, dict[str, str | None], str]]:
    """Each kind of broken npz (with its data settings) and the words of its refusal."""
    good = np.zeros((4, 28, 28), np.uint8)
    cases: dict[str, tuple[dict[str, np.ndarray] | bytes, dict[str, str | None], str]] = {
        "missing images": ({"pixels": good}, {}, r"has no `images` array \(it holds `pixels`\)"),
        "floats": ({"images": good.astype(np.float32)}, {}, "holds float32, but pixels must be"),
        "NaNs": ({"images": np.full((4, 28, 28), np.nan)}, {}, "holds float64 with NaNs"),
        "float labels": (
            {"images": good, "labels": np.array([0.0, 1.0, 0.0, 1.0])},
            {},
            "holds float64, but labels must be integers",
        ),
        "negative label": (
            {"images": good, "labels": np.array([0, 1, -3, 1])},
            {},
            "has label -3 at index 2, out of range",
        ),
        "label gap": (
            {"images": good, "labels": np.array([0, 0, 2, 2])},
            {},
            r"has 0 image\(s\) of class 1",
        ),
        "label count": (
            {"images": good, "labels": np.array([0, 0, 1, 1, 1])},
            {},
            "holds 5 labels but `images` holds 4 images",
        ),
        "unlabeled test file": (
            {"images": good, "labels": np.array([0, 0, 1, 1])},
            {"test_path": "unlabeled_test.npz"},
            "has `labels`, .*unlabeled_test.npz has none: label both files or neither",
        ),
        "test label out of range": (
            {"images": good, "labels": np.array([0, 0, 1, 1])},
            {"test_path": "test.npz"},
            r"has label 7 at index 1, out of range: the training file .* has classes 0..1",
        ),
        "shape": ({"images": np.zeros((4, 28), np.uint8)}, {}, r"has shape \[4, 28\]"),
        "not npz": (b"PK\x03\x04 broken zip", {}, "Cannot read .* as an .npz archive"),
        "pickled": (
            {"images": np.array([object()], dtype=object)},
            {},
            "Cannot read .* holds Python objects",
        ),
    }
    np.savez(tmp_path / "test.npz", images=good[:2], labels=np.array([0, 7]))
    np.savez(tmp_path / "unlabeled_test.npz", images=good[:2])
    made = {}
    for kind, (content, settings, message) in cases.items():
        path = tmp_path / f"{kind.replace(' ', '_')}.npz"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            np.savez(path, **content)
        resolved = {k: str(tmp_path / v) if v else v for k, v in settings.items()}
        made[kind] = (path, resolved, message)
    return made


@pytest.mark.parametrize(
    "kind",
    [
        "missing images",
        "floats",
        "NaNs",
        "float labels",
        "negative label",
        "label gap",
        "label count",
        "unlabeled test file",
        "test label out of range",
        "shape",
        "not npz",
        "pickled",
    ],
)
def test_bad_npz_files_are_refused_naming_the_file(tmp_path: Path, kind: str) -> None:
    path, settings, message = bad_npz(tmp_path)[kind]
    with pytest.raises(DataError, match=message) as refused:
        npz_data(path, **settings)
    assert str(tmp_path) in str(refused.value)


# ---------------------------------------------------------------------------------- metrics
def classifier_file(path: Path, num_classes: int, channels: int = 1) -> Path:
    torch.manual_seed(0)
    network = MNISTClassifier(num_classes=num_classes, channels=channels)
    config = {
        "_target_": "gan_lightning.networks.digit_cnn.MNISTClassifier",
        "num_classes": num_classes,
        "channels": channels,
    }
    return save_classifier(path, network, config, test_accuracy=None, dataset="test")


def test_metrics_judge_a_labeled_folder_with_its_own_classifier(
    digits: Path, tmp_path: Path
) -> None:
    module = folder_data(digits, tmp_path, channels=3, test_fraction=0.3)
    suite = build_suite(classifier_file(tmp_path / "c.pt", 3, 3), module, batch_size=8)
    add_real_as_fake(suite, module, "train", batch_size=8)
    values = suite.compute()
    assert values["num_real"] == 9 and values["num_fake"] == 21
    assert len(values["class_fractions"]) == 3 and len(values["cond_acc_per_class"]) == 3
    with pytest.raises(CheckpointError, match=r"of 10 classes, but image folder .* of 3 classes"):
        build_suite(classifier_file(tmp_path / "ten.pt", 10, 3), module)
    with pytest.raises(CheckpointError, match="takes 1-channel images .* holds 3-channel"):
        build_suite(classifier_file(tmp_path / "gray.pt", 3, 1), module)


def test_metrics_on_unlabeled_images_use_features_only(tmp_path: Path) -> None:
    module = folder_data(flat_folder(tmp_path / "flat", 20), tmp_path, test_fraction=0.5)
    suite = build_suite(classifier_file(tmp_path / "c.pt", 10), module, batch_size=8)
    add_real_as_fake(suite, module, "train", batch_size=8)
    values = suite.compute()
    assert np.isfinite(values["fid"]) and "cond_acc" not in values


# ---------------------------------------------------------------------------------- end to end
def test_train_on_a_folder_then_evaluate_leaves_the_folder_untouched(tmp_path: Path) -> None:
    """``python -m gan_lightning.train data=folder ...`` on RGB images of 3 classes, then
    ``evaluate`` on its checkpoint with a classifier of those classes."""
    from gan_lightning.evaluate import evaluate

    data = tmp_path / "my data"  # a space: paths are quoted where they must be
    for label, colour in enumerate(((200, 0, 0), (0, 200, 0), (0, 0, 200))):
        for index in range(6):
            pixels = np.zeros((32, 32, 3), np.uint8)
            pixels[4 + 8 * label : 12 + 8 * label] = colour
            write_image(data / f"class{label}" / f"{index}.jpg", pixels)
    before = snapshot(data)
    run = tmp_path / "run"
    classifier = classifier_file(tmp_path / "colours_classifier.pt", 3, channels=3)
    env = {key: value for key, value in os.environ.items() if key != "HYDRA_FULL_ERROR"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gan_lightning.train",
            "data=folder",
            f"data.root={data}",
            "data.dataset=colours",
            "data.channels=3",
            "data.test_fraction=0.5",  # 9 test images: precision/recall's k=3 needs over 3
            "data.batch_size=4",
            "model=cgan",
            "model.num_classes=3",
            "trainer=debug",
            f"metrics.classifier_ckpt={classifier}",  # scored during training, as on MNIST
            "metrics.num_samples=30",
            "metrics.final_num_samples=30",
            "metrics.batch_size=10",
            "callbacks.training_pictures=null",
            "callbacks.progress_bar=null",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        env={**env, "GAN_PROJECT_ROOT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Decoded 18 images" in result.stdout + result.stderr
    assert len(list((tmp_path / "outputs" / "cache" / "data").glob("my_data-*.npz"))) == 1
    assert "fid" in json.loads((run / "metrics.json").read_text())
    cfg = compose_config(
        "evaluate",
        [
            f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
            f"classifier_ckpt={classifier}",
            "num_samples=30",
            "batch_size=10",
            f"out={tmp_path / 'eval.json'}",
        ],
    )
    report = evaluate(cfg)
    (row,) = report["runs"]
    assert len(row["cond_acc_per_class"]) == 3 and row["num_real"] == 9
    assert json.loads((tmp_path / "eval.json").read_text()) == report
    assert snapshot(data) == before  # nothing written into the data folder, nothing touched


def test_evaluate_on_unlabeled_data_asks_for_a_classifier(tmp_path: Path) -> None:
    from gan_lightning.evaluate import _Judges

    flat = flat_folder(tmp_path / "flat", 6)
    cfg = OmegaConf.create({"data_root": None, "classifier_ckpt": None, "batch_size": 10})
    data = {
        "_target_": "gan_lightning.data.folder.ImageFolderDataModule",
        "root": str(flat),
        "cache_dir": None,
        "batch_size": 2,
    }
    with pytest.raises(EvaluateError, match="has no labels, so no classifier was trained on it"):
        _Judges(cfg, torch.device("cpu"))({"data": data})


@pytest.mark.parametrize("name", ["folder", "npz"])
def test_yaml_configs_instantiate(tmp_path: Path, digits: Path, name: str) -> None:
    np.savez(tmp_path / "s.npz", images=np.zeros((40, 28, 28), np.uint8))
    cfg = OmegaConf.create(
        {"paths": {"log_dir": str(tmp_path / "outputs")}, "model": {"image_size": 28}}
    )
    cfg.data = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    cfg.data["root" if name == "folder" else "path"] = str(
        digits if name == "folder" else tmp_path / "s.npz"
    )
    module = instantiate(cfg.data, batch_size=2)
    assert isinstance(module, WholeTensorDataModule)
    module.prepare_data()
    module.setup("fit")
    assert module.num_train > 0


def test_the_benchmark_writes_the_worked_examples_folder(
    tiny_mnist_root: Path, tmp_path: Path
) -> None:
    """``benchmarks/folder_data.py --write-only``, as docs/own-data.md runs it."""
    script = REPO / "benchmarks" / "folder_data.py"
    arguments = ["--images", "20", "--write-only", "--data-root", str(tiny_mnist_root)]
    result = subprocess.run(
        [sys.executable, str(script), *arguments, "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "out" / "digits_20"
    assert sorted(path.name for path in folder.iterdir()) == [str(digit) for digit in range(10)]
    module = folder_data(folder, tmp_path)
    assert module.class_names == [str(digit) for digit in range(10)]
    assert (module.num_train, module.num_test) == (10, 10)  # one test image of each digit


def test_evaluate_refuses_a_data_target_from_a_file_that_is_not_a_data_module(
    tmp_path: Path,
) -> None:
    from gan_lightning.evaluate import _Judges

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    cfg = OmegaConf.create({"data_root": None, "classifier_ckpt": None, "batch_size": 10})
    for data in (
        {"_target_": "pathlib.Path.unlink", "self": str(victim)},
        {
            "_target_": "gan_lightning.data.folder.ImageFolderDataModule",
            "root": {"_target_": "pathlib.Path.unlink", "self": str(victim)},
        },
    ):
        with pytest.raises(EvaluateError, match="files may only name the data modules"):
            _Judges(cfg, torch.device("cpu"))({"data": data})
    assert victim.read_text() == "keep me"
