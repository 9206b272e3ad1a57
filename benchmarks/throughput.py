"""Training throughput of gan-lightning against a plain PyTorch loop and the seeds' loop.

    python benchmarks/throughput.py                                # mlp and dcgan, batch 64
    python benchmarks/throughput.py --precision 32-true bf16-mixed --json bench.json
    python benchmarks/throughput.py --quick --models mlp           # smoke test: a few steps

Three contestants train the same networks with the same loss, optimizers and data
(:mod:`contestants`): 1 ``framework`` (``Trainer.fit`` as ``python -m gan_lightning.train`` runs
it), 2 ``plain`` (the fastest simple hand-written loop) and 3 ``seed`` (torchvision MNIST with
per-sample transforms, as the seed projects do). They run interleaved, round after round, in an
order that rotates every round, so a busy neighbour slows them alike; the ratios 1/2 and 1/3 are
medians of per-round ratios. Alongside: FLOPs per image against the machine's matmul peak, the
data path alone, the framework's between-epoch cost, and a real CLI run's peak memory and the
share of its training time spent on evaluation.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from functools import partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch
import torchvision

from contestants import (
    PRECISIONS,
    PlainGANStep,
    Timing,
    Workload,
    compose_config,
    load_train_images,
    run_framework,
    run_plain,
    run_seed,
)
from datapath import datamodule_loader, images_per_second, seed_loader
from flops import PEAK_FOR_PRECISION, peak_table, step_flops
from real_run import train_run
from timing import summarize

#: Settings of a full run and of ``--quick``, for whatever the command line leaves unset.
FULL = dict(steps=100, warmup=10, rounds=3, matmul_size=2048, data_batches=200, run_batches=None)
QUICK = dict(steps=3, warmup=1, rounds=1, matmul_size=256, data_batches=5, run_batches=2)
#: Whole epochs of the real CLI run per model: about half a minute of training on 2 CPU cores,
#: enough for the metrics budget to settle (an MLP epoch lasts a second, a DCGAN epoch 20 s).
REAL_RUN_EPOCHS = {"mlp": 20, "fc": 20}
DEFAULT_REAL_RUN_EPOCHS = 2
PACKAGES = ("torch", "torchvision", "pytorch-lightning", "hydra-core", "gan-lightning")

Runner = Callable[[Workload, int, int], Timing]


# ---------------------------------------------------------------------------------- command line
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Images per second of gan-lightning vs a plain PyTorch loop and the seeds'.",
    )
    parser.add_argument("--models", nargs="+", default=["mlp", "dcgan"], help="model configs")
    parser.add_argument(
        "--batch-size", nargs="+", type=_positive, help="default: 64, and 512 too on a GPU"
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=["32-true"],
        choices=PRECISIONS,
        help="trainer.precision values; bf16-mixed pays off on GPUs and CPUs with AVX-512 BF16",
    )
    parser.add_argument("--steps", type=_positive, help="timed batches per run (100)")
    parser.add_argument("--warmup", type=_positive, help="untimed batches first (10)")
    parser.add_argument("--rounds", type=_positive, help="interleaved repetitions (3)")
    parser.add_argument(
        "--seed-workers",
        nargs="+",
        type=int,
        default=[0],
        help="DataLoader num_workers of the seed-style contestant; 0 is the seeds' default",
    )
    parser.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default="auto", help="auto: CUDA if present"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile G and D")
    parser.add_argument("--channels-last", action="store_true", help="NHWC layout (conv nets)")
    parser.add_argument("--threads", type=_positive, help="torch CPU threads (default: torch's)")
    parser.add_argument("--data-root", help="folder holding MNIST/raw (default: the config's)")
    parser.add_argument(
        "--overrides",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="Hydra overrides for settings around the step, e.g. metrics.classifier_ckpt=PATH "
        "(settings that change the step itself would make the contestants differ)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="a few steps only: a smoke test")
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here; use --device cpu")
    if args.device == "cpu" and "16-mixed" in args.precision:
        parser.error("--precision 16-mixed needs a GPU; on a CPU use bf16-mixed")
    if args.device == "cuda":
        # A GPU reaches its peak only on much larger products than a CPU core does.
        args.matmul_size *= 4
    if args.batch_size is None:
        args.batch_size = [64, 512] if args.device == "cuda" else [64]
    return args


# ---------------------------------------------------------------------------------- measuring
def machine_info(device: torch.device) -> dict[str, Any]:
    """What the figures depend on: the hardware, the thread count, the load, the versions."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "load_average_start": list(os.getloadavg()),
        # A progress bar redraws only on a terminal, so its cost depends on this.
        "stdout_is_terminal": sys.stdout.isatty(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_data_missing(root: str) -> str | None:
    """Why torchvision's MNIST cannot load from ``root`` (the seed loop needs its layout)."""
    try:
        torchvision.datasets.MNIST(root, train=True, download=False)
    except RuntimeError as err:
        return f"{err} (root={root})"
    return None


def contestant_runners(seed_workers: Sequence[int], with_seed: bool) -> dict[str, Runner]:
    runners: dict[str, Runner] = {"framework": run_framework, "plain": run_plain}
    for workers in seed_workers if with_seed else ():
        name = "seed" if workers == 0 else f"seed_w{workers}"
        runners[name] = partial(run_seed, num_workers=workers)
    return runners


def flop_per_image(workload: Workload, device: torch.device) -> float:
    """FLOPs of one D+G step per real image, counted on an uncompiled copy of the step."""
    cfg = compose_config(workload, Path.cwd())
    real = load_train_images(cfg, device)[: workload.batch_size]
    step = PlainGANStep(cfg, device)
    return step_flops(step, real) / workload.batch_size


def run_rounds(
    workloads: list[Workload], runners: dict[str, Runner], args: argparse.Namespace
) -> tuple[dict[Workload, dict[str, list[Timing]]], dict[str, float]]:
    """Every contestant on every workload, round after round, in a rotating order.

    The matmul peak is measured at the start of every round as well and its best kept: one
    taken while a neighbour happened to be busy would flatter every fraction of it.
    """
    timings: dict[Workload, dict[str, list[Timing]]] = {
        workload: {name: [] for name in runners} for workload in workloads
    }
    peaks: dict[str, float] = {}
    names = list(runners)
    for round_index in range(args.rounds):
        for dtype, gflops in peak_table(torch.device(args.device), args.matmul_size).items():
            peaks[dtype] = max(gflops, peaks.get(dtype, 0.0))
        shift = round_index % len(names)
        order = names[shift:] + names[:shift]
        for workload in workloads:
            for name in order:
                timing = runners[name](workload, args.warmup, args.steps)
                timings[workload][name].append(timing)
                _progress(
                    f"round {round_index + 1}/{args.rounds}  {workload.label:24s} {name:10s} "
                    f"{timing.images_per_s:10,.0f} images/s"
                )
    return timings, peaks


def measure_data_path(
    workloads: list[Workload], args: argparse.Namespace, with_seed: bool
) -> list[dict[str, Any]]:
    """Loader-only images/s, once per image size (the data does not depend on the model)."""
    if not with_seed:
        return []
    results = []
    seen_sizes: set[tuple[int, int]] = set()
    for workload in workloads:
        cfg = compose_config(workload, Path.cwd())
        key = (int(cfg.model.image_size), workload.batch_size)
        if key in seen_sizes:
            continue
        seen_sizes.add(key)
        loaders = {"datamodule": datamodule_loader(cfg)}
        for workers in args.seed_workers:
            name = "seed" if workers == 0 else f"seed_w{workers}"
            loaders[name] = seed_loader(cfg, workers)
        rates: dict[str, list[float]] = {name: [] for name in loaders}
        for _ in range(args.rounds):
            for name, loader in loaders.items():
                rates[name].append(images_per_second(loader, args.data_batches))
        ratios = {
            f"datamodule/{name}": summarize(
                [dm / other for dm, other in zip(rates["datamodule"], values, strict=True)]
            )
            for name, values in rates.items()
            if name != "datamodule"
        }
        results.append(
            {
                "image_size": key[0],
                "batch_size": key[1],
                "images_per_s": {name: summarize(values) for name, values in rates.items()},
                "ratios": ratios,
            }
        )
        _progress(f"data path {key[0]}px b{key[1]}: " + _ratios_text(ratios))
    return results


def measure_real_runs(workloads: list[Workload], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Peak RSS and evaluation share of ``python -m gan_lightning.train`` per model.

    At the first batch size and precision, with this run's classifier (``metrics.classifier_ckpt``
    resolved here: the child runs in a temporary folder).
    """
    results = []
    for model in args.models:
        workload = next(w for w in workloads if w.model == model)
        cfg = compose_config(workload, Path.cwd())
        overrides = [
            f"model={model}",
            f"data.batch_size={workload.batch_size}",
            f"data.root={cfg.data.root}",
            f"trainer.accelerator={workload.device}",
            f"trainer.precision={workload.precision}",
            f"metrics.classifier_ckpt={cfg.metrics.classifier_ckpt}",
            *workload.overrides,
        ]
        epochs = 1 if args.quick else REAL_RUN_EPOCHS.get(model, DEFAULT_REAL_RUN_EPOCHS)
        run = train_run(overrides, epochs, args.run_batches)
        results.append({"model": model, "batch_size": workload.batch_size, **run})
        share = run["eval_time_share"]
        _progress(
            f"real run {model}: peak RSS {run['peak_rss_mib']:.0f} MiB, evaluation share "
            + ("n/a (no classifier)" if share is None else f"{share:.1%}")
        )
    return results


def summarize_workload(
    workload: Workload,
    runs: dict[str, list[Timing]],
    flops: float,
    peaks: dict[str, float],
) -> dict[str, Any]:
    """Medians, spreads, ratios, FLOP rates and the framework's between-epoch share."""
    peak = peaks.get(PEAK_FOR_PRECISION[workload.precision])
    contestants = {}
    for name, timings in runs.items():
        rates = [timing.images_per_s for timing in timings]
        images_per_s = summarize(rates)
        gflops = flops * images_per_s["median"] / 1e9
        entry: dict[str, Any] = {
            "images_per_s": images_per_s,
            "rounds": rates,
            "images_per_cpu_s": summarize([timing.images_per_cpu_s for timing in timings]),
            "timed_images": [timing.images for timing in timings],
            "gflops": gflops,
            "peak_fraction": gflops / peak if peak else None,
        }
        gpu_peaks = [t.peak_gpu_bytes for t in timings if t.peak_gpu_bytes is not None]
        if gpu_peaks:
            entry["peak_gpu_mib"] = max(gpu_peaks) / 2**20
        contestants[name] = entry
    framework = runs["framework"]
    epoch_ends = [s for timing in framework for s in timing.epoch_end_seconds or []]
    epoch_end = summarize(epoch_ends)["median"] if epoch_ends else None
    train_seconds = (
        (framework[0].batches_per_epoch or 0)
        * workload.batch_size
        / contestants["framework"]["images_per_s"]["median"]
    )
    share = epoch_end / (epoch_end + train_seconds) if epoch_end else None
    ratios = _framework_ratios(runs, "images_per_s")
    return {
        "model": workload.model,
        "batch_size": workload.batch_size,
        "precision": workload.precision,
        "device": workload.device,
        "compile": workload.compile,
        "channels_last": workload.channels_last,
        "flop_per_image": flops,
        "contestants": contestants,
        "ratios": ratios,
        "cpu_ratios": _framework_ratios(runs, "images_per_cpu_s"),
        "epoch_end_seconds": epoch_end,
        "epoch_end_rounds": epoch_ends,
        "epoch_train_seconds": train_seconds,
        "epoch_end_share": share,
        # A whole epoch of the framework, its epoch end included, against one of the plain
        # loop, which does nothing between epochs: the steady-state ratio times the share of
        # the framework's epoch spent training.
        "whole_epoch_ratio": ratios["framework/plain"]["median"] * (1 - share)
        if share is not None
        else None,
    }


def _framework_ratios(runs: dict[str, list[Timing]], rate: str) -> dict[str, dict[str, float]]:
    """Framework vs each other contestant, round by round: the rounds' shared load cancels."""
    framework = runs["framework"]
    return {
        f"framework/{name}": summarize(
            [
                getattr(mine, rate) / getattr(theirs, rate)
                for mine, theirs in zip(framework, timings, strict=True)
            ]
        )
        for name, timings in runs.items()
        if name != "framework"
    }


# ---------------------------------------------------------------------------------- reporting
def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _ratios_text(ratios: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{name} {summary['median']:.1f}x" for name, summary in ratios.items())


def _rate(summary: dict[str, float]) -> str:
    return f"{summary['median']:,.0f} ({summary['min']:,.0f}-{summary['max']:,.0f})"


def _ratio(summary: dict[str, float]) -> str:
    return f"{summary['median']:.2f} ({summary['min']:.2f}-{summary['max']:.2f})"


def _gflops(entry: dict[str, Any]) -> str:
    share = entry["peak_fraction"]
    return f"{entry['gflops']:,.1f}" + (f" ({share:.0%})" if share is not None else "")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _head(workload: dict[str, Any]) -> list[str]:
    return [workload["model"], str(workload["batch_size"]), workload["precision"]]


def throughput_table(workloads: list[dict[str, Any]], rate: str, ratios: str) -> str:
    """Images/s (or per CPU-second) of every contestant, and the framework's ratios to the rest."""
    names = list(workloads[0]["contestants"])
    others = [name for name in names if name != "framework"]
    rows = [
        _head(w)
        + [_rate(w["contestants"][name][rate]) for name in names]
        + [_ratio(w[ratios][f"framework/{name}"]) for name in others]
        for w in workloads
    ]
    ratio_headers = [f"1/{position} ({name})" for position, name in enumerate(others, start=2)]
    return markdown_table(["model", "batch", "precision", *names, *ratio_headers], rows)


def flops_table(workloads: list[dict[str, Any]]) -> str:
    names = list(workloads[0]["contestants"])
    rows = [
        _head(w)
        + [f"{w['flop_per_image'] / 1e6:,.1f}"]
        + [_gflops(w["contestants"][name]) for name in names]
        for w in workloads
    ]
    return markdown_table(["model", "batch", "precision", "MFLOP/image", *names], rows)


def epoch_end_table(workloads: list[dict[str, Any]]) -> str:
    rows = []
    for w in workloads:
        if w["epoch_end_share"] is None:
            figures = ["-", "-", "-", "-"]
        else:
            figures = [
                f"{w['epoch_end_seconds']:.2f}",
                f"{w['epoch_train_seconds']:.2f}",
                f"{w['epoch_end_share']:.1%}",
                f"{w['whole_epoch_ratio']:.2f}",
            ]
        rows.append(_head(w) + figures)
    headers = [
        "model",
        "batch",
        "precision",
        "epoch end s",
        "training s/epoch",
        "share",
        "whole epoch 1/2",
    ]
    return markdown_table(headers, rows)


def data_path_table(data_path: list[dict[str, Any]]) -> str:
    loaders = list(data_path[0]["images_per_s"])
    ratios = list(data_path[0]["ratios"])
    rows = [
        [str(d["image_size"]), str(d["batch_size"])]
        + [_rate(d["images_per_s"][name]) for name in loaders]
        + [_ratio(d["ratios"][name]) for name in ratios]
        for d in data_path
    ]
    return markdown_table(["image size", "batch", *loaders, *ratios], rows)


def real_run_table(runs: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["model"],
            str(r["batch_size"]),
            str(r["epochs"]),
            f"{r['wall_s']:.1f}",
            f"{r['peak_rss_mib']:,.0f}",
            "n/a" if r["eval_time_share"] is None else f"{r['eval_time_share']:.1%}",
        ]
        for r in runs
    ]
    headers = ["model", "batch", "epochs", "wall s", "peak RSS MiB", "evaluation share"]
    text = markdown_table(headers, rows)
    names = list(workloads[0]["contestants"])
    gpu_rows = [
        _head(w) + [f"{w['contestants'][name]['peak_gpu_mib']:,.0f}" for name in names]
        for w in workloads
        if "peak_gpu_mib" in w["contestants"]["framework"]
    ]
    if gpu_rows:
        gpu_table = markdown_table(["model", "batch", "precision", *names], gpu_rows)
        text += "\n\nPeak GPU memory (MiB, torch.cuda.max_memory_allocated)\n\n" + gpu_table
    return text


def report(results: dict[str, Any]) -> str:
    """The human-readable summary: machine, the main table, then the supporting figures."""
    machine = results["machine"]
    workloads = results["workloads"]
    peaks = ", ".join(f"{k} {v:,.0f}" for k, v in results["peak_gflops"].items())
    sections = [
        f"machine: {machine['cpu']}, {machine['cpu_count']} CPUs, "
        f"{machine['torch_threads']} torch threads ({machine['cpu_capability']}), "
        f"GPU: {machine['gpu'] or 'none'}; load average {machine['load_average_start'][0]:.1f} "
        f"at start, {machine['load_average_end'][0]:.1f} at end\n"
        "versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()) + "\n"
        f"settings: {results['settings']}",
        "Training throughput, images/s: median (min-max) over rounds; "
        "1 = framework, 2 = plain, 3 = seed",
        throughput_table(workloads, "images_per_s", "ratios"),
        "The same runs per CPU-second of this process (moved less by other jobs than wall time)",
        throughput_table(workloads, "images_per_cpu_s", "cpu_ratios"),
        f"Achieved GFLOP/s (share of the matmul peak: {peaks} GFLOP/s)",
        flops_table(workloads),
        "Framework between epochs (checkpoint, sample grid, metrics callbacks): time of the "
        "first epoch end, which always evaluates, its share of an epoch, and the framework/plain "
        "ratio over whole epochs (the plain loop does nothing between epochs)",
        epoch_end_table(workloads),
    ]
    if results["data_path"]:
        sections += ["Data path alone, images/s", data_path_table(results["data_path"])]
    sections += [
        "A real run of `python -m gan_lightning.train` (child process): peak RSS, and the "
        "metrics/time_share it logs (evaluation time during training / training time, under "
        "the default metrics.max_time_share budget; n/a without a classifier)",
        real_run_table(results["real_runs"], workloads),
        *(f"note: {note}" for note in results["notes"]),
    ]
    return "\n\n".join(sections)


# ---------------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    machine = machine_info(device)
    workloads = [
        Workload(
            model=model,
            batch_size=batch_size,
            precision=precision,
            device=args.device,
            compile=args.compile,
            channels_last=args.channels_last,
            data_root=args.data_root,
            overrides=tuple(args.overrides),
        )
        for model in args.models
        for batch_size in args.batch_size
        for precision in args.precision
    ]
    notes = []
    data_root = str(compose_config(workloads[0], Path.cwd()).data.root)
    missing = seed_data_missing(data_root)
    if missing:
        notes.append(f"seed-style contestant skipped: torchvision cannot load MNIST: {missing}")
    runners = contestant_runners(args.seed_workers, with_seed=missing is None)

    _progress("counting FLOPs")
    flops = {w: flop_per_image(w, device) for w in workloads}
    timings, peaks = run_rounds(workloads, runners, args)
    data_path = measure_data_path(workloads, args, with_seed=missing is None)
    real_runs = measure_real_runs(workloads, args)
    machine["load_average_end"] = list(os.getloadavg())

    results = {
        "machine": machine,
        "settings": {
            key: getattr(args, key)
            for key in (
                "steps",
                "warmup",
                "rounds",
                "seed_workers",
                "compile",
                "channels_last",
                "overrides",
            )
        },
        "peak_gflops": peaks,
        "workloads": [summarize_workload(w, timings[w], flops[w], peaks) for w in workloads],
        "data_path": data_path,
        "real_runs": real_runs,
        "notes": notes,
    }
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()
