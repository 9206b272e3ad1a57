"""``data=folder`` against the IDX files it was made from: first decode, cached load, training.

    python benchmarks/folder_data.py                              # the full measurement
    python benchmarks/folder_data.py --images 2000 --steps 20     # a quick check of the script
    python benchmarks/folder_data.py --images 5000 --write-only   # only write the folder

It writes the MNIST training images of ``--data-root`` (default: GAN_DATA_DIR, else ./data;
6,309 images in ../shared/data) as PNG files in class folders ``0/`` ... ``9/``, repeated until
there are ``--images`` of them (default 60,000, MNIST's full size), into
``<--out>/digits_<N>/`` (default ``outputs/folder_data/``, not tracked; kept between runs,
written again only when its file count is wrong; the cache goes to ``<--out>/cache/``).
Then it times, each in a fresh data module as a run makes it:

1. the first decode: survey, decode in ``--workers`` processes (one per core by default) and
   write the cache, from an empty cache folder;
2. the cached load: survey and read the cache back;
3. training throughput, images per second, of ``Trainer.fit`` as ``python -m gan_lightning.train``
   runs it (the benchmark's ``framework`` contestant, :mod:`contestants`), ``model=dcgan28``,
   batch 64, on the folder and on the IDX files, ``--rounds`` times each in alternation (a busy
   neighbour slows both alike), over ``--steps`` batches after ``--warmup`` untimed ones.
   Both hold the data as one tensor, so they should match: the folder costs only at set-up.

The classifier metrics are off in both runs (``callbacks.generative_metrics=null``): they are
the same work on either source and would only add noise. ``--json`` writes the figures.
Run it on a quiet machine: the decode uses every core.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.progress import track

from gan_lightning.data.folder import ImageFolderDataModule
from gan_lightning.data.idx import load_split

REPO = Path(__file__).resolve().parents[1]
MNIST_FOLDERS = ("MNIST",)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=60_000, help="PNG files to write")
    parser.add_argument(
        "--data-root",
        default=os.environ.get("GAN_DATA_DIR", str(REPO / "data")),
        help="folder holding MNIST/raw/ (the IDX files the PNGs are made from)",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "outputs" / "folder_data", help="where to write"
    )
    parser.add_argument("--workers", type=int, default=None, help="decoding processes")
    parser.add_argument("--steps", type=int, default=300, help="timed training batches")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches first")
    parser.add_argument("--rounds", type=int, default=2, help="training runs per source")
    parser.add_argument("--write-only", action="store_true", help="write the folder, then stop")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.images < 20:
        parser.error("--images must be at least 20 (two per class)")
    return args


def write_folder(data_root: str, count: int, out: Path) -> Path:
    """``count`` MNIST training digits as ``<digit>/<n>.png``, cycling through the split."""
    folder = out / f"digits_{count}"
    if folder.is_dir() and sum(1 for _ in folder.rglob("*.png")) == count:
        print(f"{folder}: {count:,} PNG files already there")
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    images, labels = load_split(data_root, MNIST_FOLDERS, "train")
    for label in range(10):
        (folder / str(label)).mkdir(parents=True)
    pixels, digits = images.numpy(), labels.tolist()
    for index in track(range(count), description=f"writing {count:,} PNG files"):
        source = index % len(digits)
        Image.fromarray(pixels[source]).save(folder / str(digits[source]) / f"{index:06d}.png")
    return folder


def load_seconds(folder: Path, cache_dir: Path, workers: int | None) -> tuple[float, int]:
    """Wall seconds for a fresh data module to be ready (prepare_data + setup), and its size."""
    start = time.perf_counter()
    module = ImageFolderDataModule(str(folder), cache_dir=str(cache_dir), decode_workers=workers)
    module.prepare_data()
    module.setup("fit")
    return time.perf_counter() - start, module.num_train + module.num_test


def training_rates(folder: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Images per second of ``model=dcgan28`` on each source, rounds alternating."""
    # Here, not at the top: writing the folder (--write-only) needs neither Lightning nor Hydra.
    from contestants import Workload, run_framework

    common = ("callbacks.generative_metrics=null",)
    sources = {
        "folder": Workload(
            "dcgan28",
            64,
            "32-true",
            overrides=(*common, "data=folder", f"data.root={folder}"),
        ),
        "idx": Workload("dcgan28", 64, "32-true", data_root=args.data_root, overrides=common),
    }
    rates: dict[str, list[float]] = {name: [] for name in sources}
    for round_index in range(args.rounds):
        order = list(sources) if round_index % 2 == 0 else list(reversed(sources))
        for name in order:
            timing = run_framework(sources[name], args.warmup, args.steps)
            rates[name].append(timing.images_per_s)
            print(f"round {round_index + 1}, {name}: {timing.images_per_s:,.0f} images/s")
    return rates


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    folder = write_folder(args.data_root, args.images, args.out)
    if args.write_only:
        print(f"train on it: python -m gan_lightning.train data=folder data.root={folder}")
        return {"folder": str(folder)}
    cache_dir = args.out / "cache"
    shutil.rmtree(cache_dir, ignore_errors=True)
    first, count = load_seconds(folder, cache_dir, args.workers)
    cached, _ = load_seconds(folder, cache_dir, args.workers)
    rates = training_rates(folder, args)
    medians = {name: statistics.median(values) for name, values in rates.items()}
    results = {
        "images": count,
        "workers": args.workers or len(os.sched_getaffinity(0)),
        "first_decode_s": first,
        "cached_load_s": cached,
        "train_images_per_s": medians,
        "train_images_per_s_rounds": rates,
        "folder_vs_idx": medians["folder"] / medians["idx"],
        "settings": {"model": "dcgan28", "batch_size": 64, "steps": args.steps},
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "python": sys.version.split()[0],
        "numpy": np.__version__,
    }
    print(
        f"{count:,} PNG files: first decode {first:.1f} s ({count / first:,.0f} images/s), "
        f"cached load {cached:.2f} s; training dcgan28 batch 64: folder "
        f"{medians['folder']:,.0f} images/s, IDX {medians['idx']:,.0f} images/s "
        f"(ratio {results['folder_vs_idx']:.2f})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
