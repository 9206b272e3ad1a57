"""Quality per wall-clock minute: the figure a user looks at to choose a recipe.

Trains each recipe (an ``experiment=`` config) for the same wall-clock budget through the real
CLI, one run at a time so that no run slows another, with the ``TimedSnapshots`` callback saving
the weights every ``--every`` minutes. Afterwards, with no training running, every snapshot is
scored on ``--samples`` samples (1,000 by default; ``--full-at`` minutes and the end of training
on ``--final-samples``, 10,000) against the test set, and the script writes:

* ``quality_curve.png``: FID (log scale) and recall against minutes, one line per recipe and
  seed, the real-data floor dashed;
* ``quality_curve.md`` and ``quality_curve.json``: the table behind it.

    python benchmarks/quality_curve.py                       # best, best_conditional, seeds, 10 min
    python benchmarks/quality_curve.py --recipes best --minutes 30 --full-at 10 20 --seeds 42 1
    python benchmarks/quality_curve.py --skip-training --temperature 1.0   # the same runs, rescored

Each training run is exactly ``python -m gan_lightning.train experiment=<recipe> seed=<seed>
trainer.max_time=<budget>``, so its run folder (metrics.json, pictures, TensorBoard) is the
one a user would get; ``--overrides`` adds settings to every run (data root, classifier).
Every point is sampled at its run's ``temperature``; ``--temperature`` scores every snapshot and
the end of training at another (the end then from ``last.ckpt`` instead of ``metrics.json``), so
the same runs answer what a recipe's temperature buys.
FID from 1,000 samples sits above the 10,000-sample value (FID is biased upwards in small
samples): compare points of equal sample size.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from gan_lightning.callbacks.snapshots import END_FILE
from gan_lightning.generation import load_generator
from gan_lightning.metrics.suite import (
    MEMORIZATION_METRICS,
    add_generated,
    add_real_as_fake,
    build_suite,
)

DEFAULT_RECIPES = (
    "best",
    "best_conditional",
    "seed000",
    "seed001",
    "seed002",
    "seed003",
    "seed003_cnn",
    "seed004",
)
SNAPSHOT = re.compile(r"minute_(\d+\.\d+)\.ckpt$")
COLUMNS = (
    ("fid", "FID", 1),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("min_class_fraction", "min class", 3),
    ("cond_acc", "cond acc", 3),
    ("copy_share_feature", "copies", 3),
    ("nn_ratio_feature", "NN ratio", 2),
    ("temperature", "temperature", 2),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[42])
    parser.add_argument("--minutes", type=float, default=10.0, help="budget per run")
    parser.add_argument("--every", type=float, default=1.0, help="minutes between snapshots")
    parser.add_argument("--samples", type=int, default=1000, help="samples per snapshot")
    parser.add_argument("--final-samples", type=int, default=10000)
    parser.add_argument(
        "--full-at", nargs="*", type=float, default=[], help="minutes scored on --final-samples"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/quality_curve"))
    parser.add_argument(
        "--overrides", nargs="*", default=[], help="extra Hydra overrides for every run"
    )
    parser.add_argument(
        "--skip-training",
        action="store_true",
        help="score the runs already in --out (of any budget) and redraw",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=None,
        help="sample every point at this temperature (default: each run's own)",
    )
    return parser.parse_args(argv)


def max_time(minutes: float) -> str:
    seconds = max(1, round(minutes * 60))
    return f"00:{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def train(recipe: str, seed: int, args: argparse.Namespace, run_dir: Path) -> float:
    """One CLI run of ``recipe``; its wall time in seconds. A failure stops the benchmark."""
    command = [
        sys.executable,
        "-m",
        "gan_lightning.train",
        f"experiment={recipe}",
        f"seed={seed}",
        f"trainer.max_time={max_time(args.minutes)}",
        "trainer.max_epochs=100000",
        f"hydra.run.dir={run_dir}",
        "+callbacks.snapshots._target_=gan_lightning.callbacks.snapshots.TimedSnapshots",
        f"+callbacks.snapshots.every_minutes={args.every}",
        *args.overrides,
    ]
    start = time.monotonic()
    log = run_dir.with_suffix(".log")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode:
        sys.exit(f"{recipe} (seed {seed}) failed with exit code {done.returncode}; see {log}")
    return time.monotonic() - start


class Scorer:
    """One metric suite per (classifier, data) config; every snapshot of every run shares it."""

    def __init__(self, temperature: float | None = None) -> None:
        self.suites: dict[str, Any] = {}
        self.floor: dict[str, float] | None = None
        self.temperature = temperature

    def score(self, ckpt: Path, samples: int) -> dict[str, Any]:
        generator, config = load_generator(ckpt, use_ema=True, temperature=self.temperature)
        key = json.dumps([config["metrics"]["classifier_ckpt"], config["data"]], sort_keys=True)
        if key not in self.suites:
            from hydra.utils import instantiate

            datamodule = instantiate(config["data"])
            datamodule.prepare_data()
            datamodule.setup("test")
            suite = build_suite(config["metrics"]["classifier_ckpt"], datamodule)
            if self.floor is None:
                add_real_as_fake(suite, datamodule, "train", batch_size=500)
                self.floor = {
                    k: v for k, v in suite.compute().items() if k not in MEMORIZATION_METRICS
                }
                suite.reset_fake()
            self.suites[key] = suite
        suite = self.suites[key]
        suite.reset_fake()
        add_generated(suite, generator, samples, batch_size=500, seed=0)
        values = suite.compute()
        values["epoch"] = torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"]
        values["temperature"] = generator.sampling_temperature
        return values


def training_minutes(run_dir: Path) -> float:
    """How long the run trained (TimedSnapshots' record), else its ``trainer.max_time``."""
    recorded = run_dir / "snapshots" / END_FILE
    if recorded.is_file():
        return float(recorded.read_text())
    config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    days, hours, minutes, seconds = (int(part) for part in config.trainer.max_time.split(":"))
    return ((days * 24 + hours) * 60 + minutes) + seconds / 60


def score_run(run_dir: Path, args: argparse.Namespace, scorer: Scorer) -> list[dict[str, Any]]:
    """Every snapshot of one run (and its final metrics.json) as rows, in time order."""
    rows = []
    snapshots = sorted(
        (float(match.group(1)), path)
        for path in (run_dir / "snapshots").glob("minute_*.ckpt")
        if (match := SNAPSHOT.search(path.name))
    )
    for minute, path in snapshots:
        full = any(abs(minute - mark) < 1e-6 for mark in args.full_at)
        samples = args.final_samples if full else args.samples
        rows.append({"minute": minute, "samples": samples, **scorer.score(path, samples)})
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        sys.exit(
            f"{run_dir} has no metrics.json: the run had no classifier. Train one first "
            "(`python -m gan_lightning.train_classifier`) or pass metrics.classifier_ckpt=<file> "
            "in --overrides."
        )
    final = json.loads(metrics.read_text())
    if args.temperature is not None:  # metrics.json holds the run's own temperature's figures
        final = scorer.score(run_dir / "checkpoints" / "last.ckpt", final["num_fake"])
    else:
        config = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
        final["temperature"] = config.get("temperature", 1.0)
    rows.append(
        {"minute": training_minutes(run_dir), "samples": final["num_fake"], "final": True, **final}
    )
    return rows


def markdown(results: dict[str, list[dict[str, Any]]], floor: dict[str, float] | None) -> str:
    header = ["recipe", "minute", "epochs", "samples"] + [title for _, title, _ in COLUMNS]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rows in results.items():
        for row in rows:
            shown = row.get("final") or row["samples"] >= 10000 or row["minute"] % 5 == 0
            if not shown:
                continue
            cells = [name, f"{row['minute']:.3g}", str(row["epoch"] + 1), str(row["samples"])]
            cells += [f"{row[key]:.{digits}f}" if key in row else "" for key, _, digits in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    if floor is not None:
        cells = ["real-data floor", "", "", str(floor["num_fake"])]
        cells += [f"{floor[key]:.{d}f}" if key in floor else "" for key, _, d in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(
    results: dict[str, list[dict[str, Any]]],
    floor: dict[str, float] | None,
    out: Path,
    samples: int,
    final_samples: int,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (fid_axis, recall_axis) = plt.subplots(1, 2, figsize=(12, 5.5))
    for name, rows in results.items():
        # Points of one sample size per line: FID (and recall) shift with the sample count.
        small = [row for row in rows if row["samples"] < final_samples]
        large = [row for row in rows if row["samples"] >= final_samples]
        color = None
        for axis, key in ((fid_axis, "fid"), (recall_axis, "recall")):
            (line,) = axis.plot(
                [row["minute"] for row in small],
                [row[key] for row in small],
                marker="o",
                ms=3,
                color=color,
                label=name,
            )
            color = line.get_color()
            axis.plot(
                [row["minute"] for row in large],
                [row[key] for row in large],
                "s-",
                ms=7,
                lw=1,
                mfc="none",
                color=color,
            )
    if floor is not None:
        fid_axis.axhline(floor["fid"], color="k", ls="--", lw=1, label="real-data floor")
        recall_axis.axhline(floor["recall"], color="k", ls="--", lw=1)
    fid_axis.set(
        yscale="log", xlabel="training minutes (wall clock)", ylabel="FID (lower is better)"
    )
    recall_axis.set(xlabel="training minutes (wall clock)", ylabel="recall (higher is better)")
    recall_axis.set_ylim(0, 1)
    for axis in (fid_axis, recall_axis):
        axis.grid(alpha=0.3)
    figure.suptitle(
        f"Quality per minute (dots: {samples:,} samples per snapshot; "
        f"squares: {final_samples:,} samples)"
    )
    # Below both panels, where it hides no line however many recipes there are.
    handles, labels = fid_axis.get_legend_handles_labels()
    columns = min(len(labels), 4)
    legend_rows = -(-len(labels) // columns)
    figure.legend(handles, labels, loc="lower center", ncol=columns, fontsize=9, frameon=False)
    figure.tight_layout(rect=(0, 0.045 * legend_rows + 0.01, 1, 1))
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs = {
        f"{recipe} (seed {seed})": args.out / f"{recipe}_seed{seed}"
        for recipe in args.recipes
        for seed in args.seeds
    }
    if args.skip_training:
        missing = [name for name, run_dir in runs.items() if not run_dir.is_dir()]
        if missing:
            print(f"not in {args.out}, left out: {', '.join(missing)}")
        runs = {name: run_dir for name, run_dir in runs.items() if run_dir.is_dir()}
    else:
        for name, run_dir in runs.items():
            recipe, seed = run_dir.name.rsplit("_seed", 1)
            seconds = train(recipe, int(seed), args, run_dir)
            print(f"trained {name} in {seconds:.0f} s", flush=True)
    scorer = Scorer(args.temperature)
    results = {name: score_run(run_dir, args, scorer) for name, run_dir in runs.items()}
    table = markdown(results, scorer.floor)
    (args.out / "quality_curve.md").write_text(table)
    (args.out / "quality_curve.json").write_text(
        json.dumps({"runs": results, "real_floor": scorer.floor}, indent=2) + "\n"
    )
    plot(results, scorer.floor, args.out / "quality_curve.png", args.samples, args.final_samples)
    print(table)
    print(f"written to {args.out}/quality_curve.png, .md and .json")


if __name__ == "__main__":
    main()
