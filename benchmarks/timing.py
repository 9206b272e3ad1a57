"""Clock reads and summary statistics shared by every part of the benchmark."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch


def clock(device: torch.device) -> float:
    """The time once all queued GPU work is done; read only at the ends of a timed window."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


@dataclass(frozen=True)
class Reading:
    """Wall-clock and process CPU seconds, read together; differences are durations.

    On a machine shared with other jobs, wall time swings with their load; the CPU time this
    process spends per image moves much less (only through shared caches and cores), so
    comparing both tells noise from real change.
    CPU time counts every thread of this process (intra-op threads, progress bar, loggers) but
    not other processes, such as DataLoader workers.
    """

    wall: float
    cpu: float

    @classmethod
    def now(cls, device: torch.device) -> Reading:
        return cls(clock(device), time.process_time())

    def __sub__(self, other: Reading) -> Reading:
        return Reading(self.wall - other.wall, self.cpu - other.cpu)

    def __add__(self, other: Reading) -> Reading:
        return Reading(self.wall + other.wall, self.cpu + other.cpu)


ZERO = Reading(0.0, 0.0)


def summarize(values: list[float]) -> dict[str, float]:
    """Median and min-max spread over rounds: robust to one round hit by a noisy neighbour."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}
