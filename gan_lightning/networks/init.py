"""Whole-model transforms applied after construction: weight init and spectral norm."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

_WEIGHTED = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def _raw_weight(module: nn.Module) -> Tensor:
    """The stored weight, which init must target under spectral norm.

    There ``module.weight`` is recomputed on each access, so initialising it in place
    would overwrite a throwaway copy and silently change nothing.
    """
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def dcgan_init_(module: nn.Module) -> None:
    """DCGAN's init (Radford et al. 2016), for ``model.apply(dcgan_init_)``.

    Conv/Linear weights ~ N(0, 0.02) and BatchNorm scales ~ N(1, 0.02), biases 0: small
    weights keep early activations out of the Tanh/LeakyReLU saturation the paper hit.
    """
    if isinstance(module, _WEIGHTED):
        nn.init.normal_(_raw_weight(module), 0.0, 0.02)
    elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
        nn.init.normal_(module.weight, 1.0, 0.02)
    else:
        return
    if module.bias is not None:
        nn.init.zeros_(module.bias)


INITIALIZERS: dict[str, Callable[[nn.Module], None] | None] = {
    "default": None,  # PyTorch's own per-layer init
    "dcgan": dcgan_init_,
}


def initialize_(module: nn.Module, scheme: str) -> nn.Module:
    """Apply the init named in the model YAML's ``init`` key, in place."""
    if scheme not in INITIALIZERS:
        raise ValueError(
            f"unknown init scheme {scheme!r}; expected one of {', '.join(INITIALIZERS)}"
        )
    init_fn = INITIALIZERS[scheme]
    if init_fn is not None:
        module.apply(init_fn)
    return module


def apply_spectral_norm_(module: nn.Module) -> nn.Module:
    """Wrap every Conv2d/ConvTranspose2d/Linear in spectral norm, in place, and return ``module``.

    This bounds each layer's Lipschitz constant (Miyato et al. 2018). BatchNorm is left as
    is; layers already parametrized are skipped so calling this twice is harmless.
    """
    targets = [
        m
        for m in module.modules()
        if isinstance(m, _WEIGHTED) and not parametrize.is_parametrized(m, "weight")
    ]
    for layer in targets:
        spectral_norm(layer)
    return module
