"""Epoch means of per-step scalars, kept as tensors on the device until the epoch ends.

``LightningModule.log(on_epoch=True)`` accumulates each value in a torchmetrics-backed result
object and moves it to the value's device on every call: about 0.2 ms per scalar on a CPU, which
for seven scalars was a fifth of an MLP GAN step. A tensor sum per scalar does the same job for
one in-place add each, and never reads a value back to the host.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor


class RunningMeans:
    """Batch-size-weighted means of named scalar tensors, as Lightning's ``on_epoch`` reduces.

    A name that is missing from some steps (D skipped on odd batches, a penalty switched off)
    is averaged over the steps that reported it, as ``self.log`` would. The scalars of one step
    are stacked and added in one operation (7 us instead of 45 us for seven scalars), one sum
    per distinct set of names.
    """

    def __init__(self) -> None:
        self._sums: dict[tuple[str, ...], Tensor] = {}
        self._weights: dict[tuple[str, ...], float] = {}

    def update(self, values: Mapping[str, Tensor], weight: float) -> None:
        names = tuple(values)
        stacked = torch.stack([value.detach().float() for value in values.values()])
        if names in self._sums:
            self._sums[names].add_(stacked, alpha=weight)
            self._weights[names] += weight
        else:
            self._sums[names] = stacked * weight
            self._weights[names] = weight

    def compute(self) -> dict[str, Tensor]:
        totals: dict[str, Tensor] = {}
        weights: dict[str, float] = {}
        for names, sums in self._sums.items():
            for name, total in zip(names, sums, strict=True):
                totals[name] = totals[name] + total if name in totals else total
                weights[name] = weights.get(name, 0.0) + self._weights[names]
        return {name: total / weights[name] for name, total in totals.items()}

    def reset(self) -> None:
        self._sums.clear()
        self._weights.clear()

    # A checkpoint written mid-epoch (Ctrl-C, SIGTERM) carries the partial sums, so the
    # resumed epoch's means equal those of an uninterrupted run. Lists, not tuples, as keys'
    # stand-ins: the file must stay loadable with torch.load(weights_only=True).
    def state_dict(self) -> dict[str, list]:
        return {
            "names": [list(names) for names in self._sums],
            "sums": [sums.cpu() for sums in self._sums.values()],
            "weights": list(self._weights.values()),
        }

    def load_state_dict(self, state: Mapping[str, list]) -> None:
        keys = [tuple(names) for names in state["names"]]
        self._sums = {key: sums.clone() for key, sums in zip(keys, state["sums"], strict=True)}
        self._weights = {key: float(w) for key, w in zip(keys, state["weights"], strict=True)}

    def to(self, device: torch.device) -> RunningMeans:
        self._sums = {names: sums.to(device) for names, sums in self._sums.items()}
        return self
