"""The CUDA path, checked on a real GPU in one command: correctness, host syncs, speed, quality.

    python benchmarks/gpu_check.py --out gpu_check/      # on a machine with a CUDA GPU
    bash benchmarks/gpu_check.sh                         # the same where hydra is missing and
                                                         #   nothing can be downloaded (docs/gpu.md)
    python benchmarks/gpu_check.py --device cpu --quick  # smoke test of this script (the suite)

Four sections, in this order, each timed; the JSON (``gpu_check.json``) and the report
(``gpu_check.md``) are rewritten after each one, so a run cut short keeps what it measured, and
``--sections`` reruns only some of them:

1. ``tests``: ``pytest -m gpu`` on ``tests/test_gpu.py`` and ``tests/test_data.py`` (steps, every
   precision and loss, compile and channels_last, exact resume, metrics and sampling, and the
   host-sync trap), one line per failure; the host-sync tests get their own line.
3. ``speed``: images/s of the framework (``Trainer.fit`` as the CLI builds it) against the plain
   CUDA loop on the same resident tensors (``benchmarks/contestants.py``), interleaved rounds,
   medians; eager at each ``--precisions`` and ``torch.compile`` at ``--compile-precision``;
   achieved TFLOP/s against measured matmul rates; peak GPU memory. A framework/plain ratio
   under 0.90 is flagged.
2. ``quality``: ``experiment=best`` for ``--best-seconds`` of wall time on the device, its final
   metrics (``metrics.json``) and last sample grid (``best_samples.png``). Without a classifier
   (``--classifier``) one is trained first, on the device, and its time reported.
4. ``profile``: where a framework batch's time goes, for one workload: host time in the batch's
   hooks and step vs in Lightning's loop between batches, GPU kernel time per batch (busy share),
   kernels per batch, and the top operators by CPU time; the same for the plain loop.

On an H200 the defaults should take about 7-8 minutes (estimated, not yet measured): tests 2.5,
quality 3.5 (1 more if a classifier must be trained), speed 4, profile 0.5. ``--budget-seconds``
(570: a 10-minute limit less a margin) skips a section that would not fit and stops a child
process before the limit, so the report always gets written. Without a CUDA device the command
refuses in one line (exit 2) unless ``--device cpu`` asks for the smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("tests", "quality", "speed", "profile")
#: seconds each section takes on an H200 with the defaults: guesses made before any GPU run
#: (correct them from the first report); a section is skipped when less than half is left
ESTIMATED_SECONDS = {"tests": 150, "quality": 200, "speed": 240, "profile": 30}
GPU_TEST_FILES = ("tests/test_gpu.py", "tests/test_data.py")
#: test names (substrings) that make up the no-host-sync check
SYNC_TESTS = ("never_wait_for_the_gpu", "trap_catches", "without_host_copies")
#: the framework contestant's end-of-fit extras (pictures, 10,000-sample metrics) lie outside the
#: timed window but would cost seconds per run; dropping them changes nothing inside it
AROUND_THE_STEP = ("callbacks.training_pictures=null", "callbacks.generative_metrics=null")
#: the ``fused`` variant: one multi-tensor kernel per Adam step, and no ``found_inf`` read-back
#: under 16-mixed (GradScaler hands the check to a fused optimizer)
FUSED_ADAM = ("+optim.g.fused=true", "+optim.d.fused=true")
MIN_RATIO = 0.90

FULL = dict(steps=200, warmup=20, rounds=3, compile_rounds=1, matmul_size=8192, profile_steps=30)
QUICK = dict(steps=3, warmup=1, rounds=1, compile_rounds=1, matmul_size=256, profile_steps=3)


# ---------------------------------------------------------------------------------- command line
def _workload(text: str) -> tuple[str, int]:
    model, _, batch = text.partition(":")
    if not model or not batch.isdigit() or int(batch) < 1:
        raise argparse.ArgumentTypeError(f"expected MODEL:BATCH such as dcgan:64, got {text!r}")
    return model, int(batch)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, default=Path("gpu_check"), help="report and JSON")
    parser.add_argument(
        "--work", type=Path, help="run folders, checkpoints, logs (default: a temporary folder)"
    )
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="a few steps only: a smoke test")
    parser.add_argument(
        "--workloads",
        nargs="+",
        type=_workload,
        default=[("dcgan", 64), ("dcgan", 512), ("mlp", 64)],
    )
    parser.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    parser.add_argument(
        "--compile-workloads",
        nargs="*",
        type=_workload,
        default=[("dcgan", 64), ("mlp", 64)],
        help="timed again with compile=true (none: leave out)",
    )
    parser.add_argument(
        "--fused-workloads",
        nargs="*",
        type=_workload,
        default=[("dcgan", 64), ("mlp", 64)],
        help="timed again with fused Adam (none: leave out)",
    )
    parser.add_argument(
        "--compile-precision", default="bf16-mixed", help="of the compile and fused timings"
    )
    parser.add_argument("--profile-workload", type=_workload, default=("dcgan", 64))
    parser.add_argument("--profile-precision", default="bf16-mixed")
    for name in FULL:
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, help=f"default {FULL[name]}")
    parser.add_argument("--data-root", help="folder holding MNIST/raw (default: the config's)")
    parser.add_argument("--classifier", type=Path, help="metrics classifier (default: train one)")
    parser.add_argument("--best-seconds", type=int, default=120, help="experiment=best wall time")
    parser.add_argument(
        "--budget-seconds", type=int, default=570, help="for the whole check (0: no limit)"
    )
    parser.add_argument(
        "--best-overrides", nargs="*", default=[], metavar="KEY=VALUE", help="for the best run"
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def no_cuda_message() -> str:
    return (
        f"gpu_check: torch {torch.__version__} sees no CUDA device, so there is nothing to "
        "check here; run it on a GPU machine (docs/gpu.md), or pass "
        "--device cpu for a smoke test of the script itself"
    )


# ---------------------------------------------------------------------------------- helpers
def child_env(data_root: str | None) -> dict[str, str]:
    """The environment of every child process: this checkout importable, exact cuBLAS."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic GEMMs (exact resume)
    env["PYTHONUNBUFFERED"] = "1"
    if data_root:
        env["GAN_DATA_DIR"] = data_root
    return env


def _progress(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def max_time(seconds: int) -> str:
    """``trainer.max_time`` (DD:HH:MM:SS) for a number of seconds."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"00:{hours:02d}:{minutes:02d}:{secs:02d}"


# ---------------------------------------------------------------------------------- 1 tests
def parse_junit(path: Path) -> list[dict[str, Any]]:
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed"}.get(child.tag, child.tag)
                message = (child.get("message") or child.text or "").strip().splitlines()
                message = message[0][:300] if message else ""
        cases.append(
            {
                "name": case.get("name", ""),
                "file": case.get("classname", ""),
                "seconds": float(case.get("time", 0)),
                "outcome": outcome,
                "message": message,
            }
        )
    return cases


def tests_section(args: argparse.Namespace, work: Path, timeout: float | None) -> dict[str, Any]:
    xml = work / "pytest.xml"
    command = [
        sys.executable, "-m", "pytest", "-m", "gpu", *GPU_TEST_FILES,
        "-q", "-p", "no:cacheprovider", f"--junitxml={xml}",
    ]  # fmt: skip
    run = subprocess.run(
        command,
        cwd=REPO,
        env=child_env(args.data_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    cases = parse_junit(xml) if xml.is_file() else []
    sync = [case for case in cases if any(name in case["name"] for name in SYNC_TESTS)]
    return {
        "returncode": run.returncode,
        "counts": dict(Counter(case["outcome"] for case in cases)),
        "sync_counts": dict(Counter(case["outcome"] for case in sync)),
        "cases": cases,
        "output_tail": _tail(run.stdout + run.stderr, 40) if run.returncode else "",
    }


def tests_report(result: dict[str, Any]) -> list[str]:
    def counts(summary: dict[str, int]) -> str:
        return ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.items())) or "none ran"

    lines = [
        f"pytest -m gpu: {counts(result['counts'])} (exit {result['returncode']})",
        f"no host sync in the step, logging or data path: {counts(result['sync_counts'])}",
    ]
    for case in result["cases"]:
        if case["outcome"] in ("failed", "error"):
            lines.append(f"  {case['outcome'].upper()} {case['name']}: {case['message']}")
    if result["output_tail"]:
        lines += ["```", result["output_tail"], "```"]
    return lines


# ---------------------------------------------------------------------------------- 2 speed
def speed_section(args: argparse.Namespace) -> dict[str, Any]:
    from contestants import Workload, run_framework, run_plain
    from throughput import flop_per_image, run_rounds, summarize_workload

    device = torch.device(args.device)
    runners = {"framework": run_framework, "plain": run_plain}
    variant = [args.compile_precision]
    groups = [
        ("eager", args.workloads, args.precisions, False, args.rounds, ()),
        ("compile=true", args.compile_workloads, variant, True, args.compile_rounds, ()),
        ("fused Adam", args.fused_workloads, variant, False, args.compile_rounds, FUSED_ADAM),
    ]
    results: dict[str, Any] = {"peak_gflops": {}, "workloads": []}
    for label, specs, precisions, compile_, rounds, overrides in groups:
        workloads = [
            Workload(
                model=model,
                batch_size=batch,
                precision=precision,
                device=args.device,
                compile=compile_,
                data_root=args.data_root,
                overrides=(*AROUND_THE_STEP, *overrides),
            )
            for model, batch in specs
            for precision in precisions
        ]
        if not workloads:
            continue
        _progress(f"speed, {label}: {len(workloads)} workloads x {rounds} rounds")
        flops = {w: flop_per_image(w, device) for w in workloads}
        settings = SimpleNamespace(
            rounds=rounds,
            warmup=args.warmup,
            steps=args.steps,
            matmul_size=args.matmul_size,
            device=args.device,
        )
        timings, peaks = run_rounds(workloads, runners, settings)
        for dtype, gflops in peaks.items():
            results["peak_gflops"][dtype] = max(gflops, results["peak_gflops"].get(dtype, 0.0))
        for w in workloads:
            summary = summarize_workload(w, timings[w], flops[w], peaks)
            summary["group"] = label
            summary["within_10_percent"] = (
                summary["ratios"]["framework/plain"]["median"] >= MIN_RATIO
            )
            results["workloads"].append(summary)
    return results


def speed_report(result: dict[str, Any]) -> list[str]:
    from throughput import markdown_table

    peaks = result["peak_gflops"]
    bf16_peak = peaks.get("bf16")
    lines = [
        "matmul rates (GFLOP/s): " + ", ".join(f"{k} {v:,.0f}" for k, v in peaks.items()),
        "",
        "images/s, median (min-max) over rounds; ratio = framework/plain, per round, median",
        "",
    ]
    rows = []
    for w in result["workloads"]:
        entries = w["contestants"]
        ratio = w["ratios"]["framework/plain"]
        flag = "" if w["within_10_percent"] else " BELOW 0.90"
        memory = [
            f"{entries[name]['peak_gpu_mib']:,.0f}" if "peak_gpu_mib" in entries[name] else "-"
            for name in entries
        ]
        tflops = [f"{entries[name]['gflops'] / 1e3:,.2f}" for name in entries]
        share = entries["framework"]["gflops"] / bf16_peak if bf16_peak else None
        epoch_end = w["epoch_end_seconds"]
        rows.append(
            [
                w["model"],
                str(w["batch_size"]),
                w["precision"],
                w["group"],
                *(_rate(entries[name]["images_per_s"]) for name in entries),
                f"{ratio['median']:.2f} ({ratio['min']:.2f}-{ratio['max']:.2f}){flag}",
                " / ".join(tflops),
                "-" if share is None else f"{share:.1%}",
                " / ".join(memory),
                "-" if epoch_end is None else f"{epoch_end:.2f} ({w['epoch_end_share']:.0%})",
            ]
        )
    headers = [
        "model", "batch", "precision", "mode", "framework", "plain", "ratio",
        "TFLOP/s fw / plain", "fw share of bf16 peak", "peak MiB fw / plain",
        "fw epoch end s, share (checkpoint, grid; no metrics)",
    ]  # fmt: skip
    lines.append(markdown_table(headers, rows))
    slow = [w for w in result["workloads"] if not w["within_10_percent"]]
    lines += [
        "",
        f"framework within 10% of the plain loop: {len(result['workloads']) - len(slow)} of "
        f"{len(result['workloads'])} workloads" + (" (see the profile section)" if slow else ""),
    ]
    return lines


def _rate(summary: dict[str, float]) -> str:
    return f"{summary['median']:,.0f} ({summary['min']:,.0f}-{summary['max']:,.0f})"


# ---------------------------------------------------------------------------------- 3 quality
def train_classifier_run(
    args: argparse.Namespace, work: Path, timeout: float | None
) -> dict[str, Any]:
    from gan_lightning.classifier import read_classifier_file

    path = work / "classifier" / "MNIST_classifier.pt"
    command = [
        sys.executable, "-m", "gan_lightning.train_classifier",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"metrics.classifier_ckpt={path}", f"hydra.run.dir={work / 'classifier_run'}",
        "callbacks.progress_bar=null",
    ]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(
        command,
        cwd=REPO,
        env=child_env(args.data_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if run.returncode:
        raise RuntimeError(f"training the classifier failed:\n{_tail(run.stdout + run.stderr)}")
    return {
        "path": str(path),
        "seconds": time.perf_counter() - start,
        "test_accuracy": read_classifier_file(path).get("test_accuracy"),
    }


def quality_section(
    args: argparse.Namespace, work: Path, out: Path, timeout: float | None
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    started = time.perf_counter()
    if args.classifier is None:
        _progress("quality: no --classifier, training one first")
        result["classifier_trained"] = train_classifier_run(args, work, timeout)
        classifier = Path(result["classifier_trained"]["path"])
    else:
        classifier = args.classifier.resolve()
    run_dir = work / "best"
    command = [
        sys.executable, "-m", "gan_lightning.train", "experiment=best",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        f"trainer.max_time={max_time(args.best_seconds)}",
        f"metrics.classifier_ckpt={classifier}", f"hydra.run.dir={run_dir}",
        "callbacks.progress_bar=null", *args.best_overrides,
    ]  # fmt: skip
    _progress(f"quality: experiment=best for {args.best_seconds} s")
    start = time.perf_counter()
    if timeout is not None:
        timeout -= start - started
    run = subprocess.run(
        command,
        cwd=REPO,
        env=child_env(args.data_root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    result.update(
        {
            "command": " ".join(command[1:]),
            "returncode": run.returncode,
            "wall_seconds": time.perf_counter() - start,
            "classifier": str(classifier),
        }
    )
    if run.returncode:
        raise RuntimeError(f"experiment=best failed:\n{_tail(run.stdout + run.stderr)}")
    result["final_metrics"] = json.loads((run_dir / "metrics.json").read_text())
    grids = sorted((run_dir / "samples").glob("epoch_*.png"))
    if grids:
        shutil.copy(grids[-1], out / "best_samples.png")
        result["sample_grid"] = grids[-1].name
    return result


def quality_report(result: dict[str, Any]) -> list[str]:
    lines = []
    trained = result.get("classifier_trained")
    if trained:
        accuracy = trained["test_accuracy"]
        lines.append(
            f"classifier trained on the device in {trained['seconds']:.0f} s"
            + (f", test accuracy {accuracy:.2%}" if accuracy is not None else "")
        )
    metrics = result.get("final_metrics", {})
    lines.append(
        f"`{result['command']}`: {result['wall_seconds']:.0f} s of wall time in all, "
        f"{metrics.get('epoch', -1) + 1} epochs"
    )
    figures = []
    for name in ("fid", "kid", "is", "precision", "recall", "coverage_kl", "min_class_fraction"):
        value = metrics.get(name)
        if isinstance(value, int | float):
            figures.append(f"{name} {value:.4g}")
    lines.append("final metrics: " + (", ".join(figures) or "none"))
    if "sample_grid" in result:
        lines.append(f"last sample grid ({result['sample_grid']}): best_samples.png")
    return lines


# ---------------------------------------------------------------------------------- 4 profile
def _kernel_stats(profiler: Any, batches: int, wall: float) -> dict[str, Any]:
    """GPU time per batch from the profiler's device events (none on a CPU)."""
    from torch.autograd import DeviceType

    kernels = [e for e in profiler.events() if e.device_type == DeviceType.CUDA]
    busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6
    table = profiler.key_averages().table(
        sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=40
    )
    return {
        "wall_ms_per_batch": 1e3 * wall / batches,
        "gpu_ms_per_batch": 1e3 * busy / batches if kernels else None,
        "gpu_busy_share": busy / wall if kernels else None,
        "gpu_events_per_batch": len(kernels) / batches,
        "top_ops": table,
    }


def _profiler() -> Any:
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.cuda.is_available():
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities)


def profile_framework(workload: Any, warmup: int, steps: int) -> dict[str, Any]:
    """A framework run: ``steps`` clocked batches (host time in the batch's hooks and step vs
    between batches), then ``steps`` profiled ones."""
    import hydra
    import pytorch_lightning as pl

    from contestants import compose_config
    from gan_lightning.build import build_gan_module, build_trainer
    from timing import clock

    class BatchWindows(pl.Callback):
        def __init__(self) -> None:
            self.batch = 0
            self.inside: list[float] = []
            self.between: list[float] = []
            self._start = self._end = 0.0
            self.profiler: Any = None
            self.profiled_wall = 0.0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            now = time.perf_counter()
            if warmup < self.batch <= warmup + steps:
                self.between.append(now - self._end)
            if self.batch == warmup + steps:
                self.profiler = _profiler().__enter__()
                self._profile_start = clock(pl_module.device)
            self._start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._end = time.perf_counter()
            if warmup <= self.batch < warmup + steps:
                self.inside.append(self._end - self._start)
            self.batch += 1
            if self.batch == warmup + 2 * steps:
                self.profiled_wall = clock(pl_module.device) - self._profile_start
                self.profiler.__exit__(None, None, None)
                trainer.should_stop = True

    with tempfile.TemporaryDirectory(prefix="gan-profile-") as tmp:
        cfg = compose_config(workload, Path(tmp), extra=("trainer.max_epochs=1000",))
        pl.seed_everything(cfg.seed, verbose=False)
        datamodule = hydra.utils.instantiate(cfg.data)
        module = build_gan_module(cfg)
        trainer = build_trainer(cfg)
        windows = BatchWindows()
        trainer.callbacks.append(windows)
        trainer.fit(module, datamodule=datamodule)
    median = sorted(windows.inside)[len(windows.inside) // 2]
    gap = sorted(windows.between)[len(windows.between) // 2]
    return {
        "host_ms_in_hooks_and_step": 1e3 * median,
        "host_ms_between_batches": 1e3 * gap,
        **_kernel_stats(windows.profiler, steps, windows.profiled_wall),
    }


def profile_plain(workload: Any, warmup: int, steps: int) -> dict[str, Any]:
    from contestants import PlainGANStep, compose_config, in_memory_batches, load_train_images
    from timing import clock

    device = torch.device(workload.device)
    cfg = compose_config(workload, Path(tempfile.gettempdir()))
    batches = in_memory_batches(load_train_images(cfg, device), workload.batch_size)
    step = PlainGANStep(cfg, device)
    for _ in range(warmup):
        step(next(batches))
    with _profiler() as profiler:
        start = clock(device)
        for _ in range(steps):
            step(next(batches))
        wall = clock(device) - start
    return _kernel_stats(profiler, steps, wall)


def profile_section(args: argparse.Namespace) -> dict[str, Any]:
    from contestants import Workload

    model, batch = args.profile_workload
    workload = Workload(
        model=model,
        batch_size=batch,
        precision=args.profile_precision,
        device=args.device,
        data_root=args.data_root,
        overrides=AROUND_THE_STEP,
    )
    warmup, steps = args.warmup, args.profile_steps
    return {
        "workload": workload.label,
        "framework": profile_framework(workload, warmup, steps),
        "plain": profile_plain(workload, warmup, steps),
    }


def profile_report(result: dict[str, Any]) -> list[str]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [f"workload {result['workload']}, per batch:"]
    for name in ("framework", "plain"):
        entry = result[name]
        busy = entry["gpu_busy_share"]
        line = (
            f"  {name}: wall {ms(entry['wall_ms_per_batch'])} ms (profiled), GPU kernels "
            f"{ms(entry['gpu_ms_per_batch'])} ms"
            + ("" if busy is None else f" ({busy:.0%} busy)")
            + f", {entry['gpu_events_per_batch']:.0f} GPU events"
        )
        if name == "framework":
            line += (
                f"; host time {ms(entry['host_ms_in_hooks_and_step'])} ms in the batch's hooks "
                f"and step, {ms(entry['host_ms_between_batches'])} ms in Lightning's loop "
                "between batches (unprofiled)"
            )
        lines.append(line)
    for name in ("framework", "plain"):
        lines += [f"top operators by self CPU time, {name}:", "```", result[name]["top_ops"], "```"]
    return lines


# ---------------------------------------------------------------------------------- entry point
REPORTS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "tests": tests_report,
    "speed": speed_report,
    "quality": quality_report,
    "profile": profile_report,
}


def summary(results: dict[str, Any]) -> list[str]:
    """One line per section: what passed, the worst speed ratio, the final FID."""
    lines = []
    for name, section in results["sections"].items():
        if "error" in section:
            lines.append(f"- {name}: ERROR {section['error'].splitlines()[0]}")
            continue
        if "skipped" in section:
            lines.append(f"- {name}: SKIPPED ({section['skipped']})")
            continue
        result = section["result"]
        if name == "tests":
            failed = [c["name"] for c in result["cases"] if c["outcome"] in ("failed", "error")]
            counts = ", ".join(f"{n} {k}" for k, n in sorted(result["counts"].items()))
            sync = ", ".join(f"{n} {k}" for k, n in sorted(result["sync_counts"].items()))
            lines.append(
                f"- tests: {counts or 'none ran'}" + (f" ({', '.join(failed)})" if failed else "")
            )
            lines.append(f"- no host sync: {sync or 'none ran'}")
        elif name == "speed" and result["workloads"]:
            workloads = result["workloads"]
            worst = min(workloads, key=lambda w: w["ratios"]["framework/plain"]["median"])
            within = sum(w["within_10_percent"] for w in workloads)
            lines.append(
                f"- speed: framework within 10% of the plain loop in {within} of {len(workloads)} "
                f"workloads; lowest ratio {worst['ratios']['framework/plain']['median']:.2f} "
                f"({worst['model']} b{worst['batch_size']} {worst['precision']} {worst['group']})"
            )
        elif name == "quality":
            metrics = result.get("final_metrics", {})
            figures = ", ".join(
                f"{key} {metrics[key]:.4g}"
                for key in ("fid", "precision", "recall")
                if key in metrics
            )
            lines.append(
                f"- quality: experiment=best for {results['settings']['best_seconds']} s: {figures}"
            )
        elif name == "profile":
            busy = result["framework"]["gpu_busy_share"]
            lines.append(
                f"- profile ({result['workload']}): framework GPU busy "
                + ("-" if busy is None else f"{busy:.0%}")
            )
    return lines


def render(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        "# gpu_check",
        "",
        f"device {results['device']} ({machine.get('gpu') or machine['cpu']}), "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items()),
        f"settings: {results['settings']}",
    ]
    if "max_memory_allocated_mib" in results:
        lines.append(
            f"peak GPU memory of this process: {results['max_memory_allocated_mib']:,.0f} MiB"
        )
    lines += ["", *summary(results)]
    for name, section in results["sections"].items():
        lines += ["", f"## {name} ({section['seconds']:.0f} s)", ""]
        if "error" in section:
            lines += [f"ERROR: {section['error']}", "```", section["traceback"], "```"]
        elif "skipped" in section:
            lines.append(f"SKIPPED: {section['skipped']}")
        else:
            lines += REPORTS[name](section["result"])
    return "\n".join(lines) + "\n"


def save(results: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "gpu_check.md").write_text(render(results))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(no_cuda_message(), file=sys.stderr)
        return 2
    sys.path.insert(0, str(REPO / "benchmarks"))
    os.environ.update({k: v for k, v in child_env(args.data_root).items() if k != "PYTHONPATH"})
    from throughput import machine_info

    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "device": args.device,
        "machine": machine_info(torch.device(args.device)),
        "settings": {
            key: getattr(args, key)
            for key in ("quick", "steps", "warmup", "rounds", "compile_rounds", "best_seconds")
        },
        "sections": {},
    }
    begin = time.perf_counter()

    def left() -> float | None:
        """Seconds of the budget left, less a margin for writing the report."""
        return (
            args.budget_seconds - 20 - (time.perf_counter() - begin)
            if args.budget_seconds
            else None
        )

    runs = {
        "tests": lambda: tests_section(args, work, left()),
        "quality": lambda: quality_section(args, work, args.out, left()),
        "speed": lambda: speed_section(args),
        "profile": lambda: profile_section(args),
    }
    failed = False
    for name in SECTIONS:
        if name not in args.sections:
            continue
        remaining = left()
        if remaining is not None and remaining < ESTIMATED_SECONDS[name] / 2:
            results["sections"][name] = {
                "skipped": f"{remaining:.0f} s of --budget-seconds left, it takes about "
                f"{ESTIMATED_SECONDS[name]} s: rerun with --sections {name}",
                "seconds": 0.0,
            }
            _progress(f"section {name} skipped: {results['sections'][name]['skipped']}")
            save(results, args.out)
            continue
        _progress(f"section {name}")
        start = time.perf_counter()
        try:
            section: dict[str, Any] = {"result": runs[name]()}
            if name == "tests" and section["result"]["returncode"] not in (0,):
                failed = True
        except Exception as error:  # report it and go on: the other sections still count
            failed = True
            section = {
                "error": f"{type(error).__name__}: {error}",
                "traceback": _tail(traceback.format_exc()),
            }
        section["seconds"] = time.perf_counter() - start
        results["sections"][name] = section
        if torch.cuda.is_available() and args.device == "cuda":
            results["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        save(results, args.out)
        _progress(f"section {name} done in {section['seconds']:.0f} s")
    print(render(results))
    print(f"wrote {args.out / 'gpu_check.json'} and {args.out / 'gpu_check.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
