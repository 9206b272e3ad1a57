"""The answer of a sweep in one table: ``summary.csv``, ``summary.md`` and the terminal.

Read from the job folders (``.hydra/overrides.yaml``, ``result.json``, ``metrics.json``,
``failure.txt``) rather than collected in memory, so it works for any launcher, including ones
that run jobs in other processes or on other machines, and for a sweep that was killed.
"""

from __future__ import annotations

import csv
import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich import box
from rich.table import Table

from gan_lightning.sweeps.jobs import FAILURE_FILE, RESULT_FILE
from gan_lightning.sweeps.objective import direction, sort_key

#: metrics.json keys shown per job, and their column titles.
METRIC_COLUMNS = (
    ("fid", "FID"),
    ("kid", "KID"),
    ("is", "IS"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("coverage_kl", "coverage KL"),
    ("cond_acc", "cond. acc."),
)
#: Overrides that say how the sweep was run, not what a job is: left out of the columns
#: (``optuna.trial``: the Optuna trial a search's job runs).
NOT_SETTINGS = ("hparams_search", "ckpt_path", "hydra.", "optuna.")
MAX_TERMINAL_ROWS = 20
MAX_JOB_NAME = 24
#: The metrics the terminal shows beside the optimized one: an 80-column terminal fits about
#: eight columns; summary.md has them all.
TERMINAL_METRICS = ("precision", "recall", "cond_acc")


@dataclass
class JobRow:
    job: str  # the job folder, relative to the sweep folder
    overrides: dict[str, str]
    status: str  # ok | pruned at epoch N | failed: <reason> | diverged at epoch N | unfinished
    epochs: int | None = None
    wall_time_s: float | None = None
    value: float | None = None  # the optimized metric, as the job returned it
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def pruned(self) -> bool:
        """Stopped early by an Optuna pruner: not a failure, but its value is an early one."""
        return self.status.startswith("pruned")


def _settings(job_dir: Path) -> dict[str, str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    lines = yaml.safe_load(path.read_text()) if path.is_file() else []
    settings = {}
    for line in lines or []:
        key, _, value = str(line).partition("=")
        key = key.lstrip("+~")
        if not key.startswith(NOT_SETTINGS):
            settings[key] = value
    return settings


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def read_job(job_dir: Path, sweep_dir: Path) -> JobRow:
    result = _json(job_dir / RESULT_FILE)
    failure = job_dir / FAILURE_FILE
    status = result.get("status")
    reason = result.get("reason") or (
        failure.read_text().splitlines()[0] if failure.is_file() else ""
    )
    if status in ("diverged", "pruned"):
        status = f"{status} at epoch {result.get('epochs', 0)}"
    elif status == "failed" or (status is None and reason):
        status = f"failed: {reason}"
    elif status is None:
        status = "unfinished"  # killed, or still running
    metrics = _json(job_dir / "metrics.json")
    return JobRow(
        job=str(job_dir.relative_to(sweep_dir)),
        overrides=_settings(job_dir),
        status=status,
        epochs=result.get("epochs"),
        wall_time_s=result.get("wall_time_s"),
        value=result.get("value"),
        metrics={key: metrics[key] for key, _ in METRIC_COLUMNS if key in metrics},
    )


def collect(sweep_dir: Path, metric: str) -> list[JobRow]:
    """Every job of the sweep, best ``metric`` first; pruned jobs (their value is from an earlier
    epoch) after the finished ones, then jobs without a value, ok ones first."""
    rows = [read_job(hydra.parent, sweep_dir) for hydra in sweep_dir.glob("**/.hydra")]

    def group(row: JobRow) -> int:
        return 1 if row.pruned else (0 if row.value is not None else 2)

    return sorted(
        rows, key=lambda row: (group(row), sort_key(row.value, metric), not row.ok, row.job)
    )


def override_keys(rows: Sequence[JobRow]) -> tuple[list[str], dict[str, str]]:
    """(keys whose values differ between jobs, {key: value} of those all jobs share)."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row.overrides if key not in keys]
    varying = [key for key in keys if len({row.overrides.get(key) for row in rows}) > 1]
    fixed = {key: rows[0].overrides[key] for key in keys if key not in varying}
    return varying, fixed


def _number(value: float | None, digits: int = 4) -> str:
    """``digits`` significant digits, and no exponent for large values (1043, not 1.04e+03)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return f"{value:.0f}" if abs(value) >= 10**digits else f"{value:.{digits}g}"


def _shorten(text: str, limit: int = 70) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Columns:
    """What the readable tables show: the job folder only when its name is short (Optuna's
    ``trial_N``; a grid's folders are named by all their overrides, already in columns)."""

    show_job: bool
    varying: list[str]  # override keys whose values differ between jobs
    metrics: list[str]  # metrics.json keys present in any job

    @classmethod
    def of(cls, rows: Sequence[JobRow], metric: str, shown: Sequence[str] | None = None) -> Columns:
        """``shown``: the metrics.json keys to consider (all of them by default); the optimized
        metric's own key is left out, as it has its column already."""
        varying, _ = override_keys(rows)
        optimized = metric.removeprefix("metrics/")
        present = [
            key
            for key, _ in METRIC_COLUMNS
            if key != optimized
            and (shown is None or key in shown)
            and any(key in row.metrics for row in rows)
        ]
        short = all(len(row.job) <= MAX_JOB_NAME for row in rows)
        return cls(show_job=short or not varying, varying=varying, metrics=present)


def _shown_value(value: str, digits: int = 4) -> str:
    """A swept value as a table shows it: Optuna's 0.00027294705821610083 as 0.0002729."""
    try:
        number = float(value)
    except ValueError:
        return value
    shown = f"{number:.{digits}g}"
    return shown if len(shown) < len(value) else value


def table_cells(row: JobRow, columns: Columns, digits: int = 4) -> list[str]:
    """One row of the readable tables; summary.csv and the pasteable command keep full values."""
    return [
        *([row.job] if columns.show_job else []),
        *(_shown_value(row.overrides.get(key, ""), digits) for key in columns.varying),
        _shorten(row.status),
        "" if row.epochs is None else str(row.epochs),
        _number(row.wall_time_s, 3),
        _number(row.value, digits),
        *(_number(row.metrics.get(key), digits) for key in columns.metrics),
    ]


def headers(columns: Columns, metric: str, short: bool = False) -> list[str]:
    """``short``: the optimized metric by its title (``FID``), not its key (``metrics/fid``)."""
    titles = dict(METRIC_COLUMNS)
    arrow = "↓" if direction(metric) == "minimize" else "↑"
    name = titles.get(metric.removeprefix("metrics/"), metric) if short else metric
    return [
        *(["job"] if columns.show_job else []),
        *columns.varying,
        "status",
        "epochs",
        "wall s",
        f"{name} {arrow}",
        *(titles[key] for key in columns.metrics),
    ]


def write_csv(path: Path, rows: Sequence[JobRow], metric: str) -> None:
    """Every override (fixed ones too) and the full failure reasons: for scripts and notebooks."""
    keys: list[str] = []
    for row in rows:
        keys += [key for key in row.overrides if key not in keys]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        metric_keys = [key for key, _ in METRIC_COLUMNS]
        writer.writerow(["job", *keys, "status", "epochs", "wall_time_s", metric, *metric_keys])
        for row in rows:
            writer.writerow(
                [
                    row.job,
                    *(row.overrides.get(key, "") for key in keys),
                    row.status,
                    "" if row.epochs is None else row.epochs,
                    "" if row.wall_time_s is None else row.wall_time_s,
                    "" if row.value is None else row.value,
                    *(row.metrics.get(key, "") for key in metric_keys),
                ]
            )


def best_command(rows: Sequence[JobRow]) -> str | None:
    """The command that trains the best job again as a single run, or None without a value."""
    best = next((row for row in rows if row.ok and row.value is not None), None)
    if best is None:
        return None
    settings = " ".join(shlex.quote(f"{key}={value}") for key, value in best.overrides.items())
    return f"python -m gan_lightning.train {settings}".rstrip()


def markdown(rows: Sequence[JobRow], metric: str, sweep_dir: Path) -> str:
    columns = Columns.of(rows, metric)
    _, fixed = override_keys(rows)
    head = headers(columns, metric)
    lines = [f"# {headline(rows, sweep_dir)}", ""]
    if fixed:
        lines += ["Every job: " + " ".join(f"`{k}={v}`" for k, v in fixed.items()), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        cells = table_cells(row, columns)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    command = best_command(rows)
    if command:
        lines += ["", f"Best by {metric}, as a single run:", "", "```bash", command, "```"]
    return "\n".join(lines) + "\n"


def rich_table(rows: Sequence[JobRow], metric: str, sweep_dir: Path) -> Table:
    """The terminal's short version of summary.md: fewer metrics, three significant digits."""
    columns = Columns.of(rows, metric, TERMINAL_METRICS)
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
        caption=(
            f"{len(rows) - MAX_TERMINAL_ROWS} more in summary.md"
            if len(rows) > MAX_TERMINAL_ROWS
            else None
        ),
    )
    for title in headers(columns, metric, short=True):
        table.add_column(title, overflow="fold")
    for row in rows[:MAX_TERMINAL_ROWS]:
        style = None if row.ok or row.pruned else "red"
        table.add_row(*table_cells(row, columns, digits=3), style=style)
    return table


def headline(rows: Sequence[JobRow], sweep_dir: Path) -> str:
    """``Sweep <folder>: 7 succeeded, 2 failed`` (and how many were pruned or never finished,
    if any)."""
    unfinished = sum(1 for row in rows if row.status == "unfinished")
    pruned = sum(1 for row in rows if row.pruned)
    failed = sum(1 for row in rows if not row.ok) - unfinished - pruned
    line = f"Sweep {sweep_dir}: {len(rows) - failed - unfinished - pruned} succeeded"
    line += f", {pruned} pruned" if pruned else ""
    line += f", {failed} failed"
    return line + (f", {unfinished} unfinished" if unfinished else "")


def write_summary(sweep_dir: Path, metric: str) -> list[JobRow]:
    """Write ``summary.csv`` and ``summary.md`` into the sweep folder; returns the rows."""
    rows = collect(sweep_dir, metric)
    write_csv(sweep_dir / "summary.csv", rows, metric)
    (sweep_dir / "summary.md").write_text(markdown(rows, metric, sweep_dir))
    return rows
