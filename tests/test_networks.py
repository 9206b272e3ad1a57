"""Shape, range, size and convention checks for every model YAML and network helper."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.nn.utils import parametrize

from gan_lightning.networks.cgan import CGANDiscriminator, CGANGenerator
from gan_lightning.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_lightning.networks.digit_cnn import MNISTClassifier
from gan_lightning.networks.init import INITIALIZERS, apply_spectral_norm_, initialize_

MODEL_DIR = Path(__file__).parents[1] / "conf" / "model"
BATCH = 4

# (generator, discriminator) parameter counts; dcgan/fc/cnn come from the seeds' own code.
PARAM_COUNTS = {
    "dcgan": (1_070_657, 661_313),
    "mlp": (114_800, 110_849),
    "dcgan7": (1_781_889, 539_777),
    "fc": (218_128, 100_609),
    "cnn": (245_633, 21_381),
    "cgan": (1_103_105, 433_793),  # projection D: 392,833 + a 10 x 4,096 label embedding
    "dcgan28": (1_040_385, 392_833),  # cgan's nets without labels: no one-hot rows, no embedding
    # G: 64x6,272 linear + BN + 128->64 and 64->1 4x4 transposed convs; D: 1->64, 64->128, 6,272->1
    "lean": (552_513, 138_561),
    # one-hot labels widen G's linear by 10 rows; 2 x 10 x (6,272 + 64) conditional-BN
    # gains and biases replace BN's affine; D adds a 10 x 6,272 projection embedding
    "lean_cgan": (729_281, 201_281),
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def load(name: str) -> DictConfig:
    return OmegaConf.load(MODEL_DIR / f"{name}.yaml")


def test_every_yaml_has_expected_counts() -> None:
    assert sorted(p.stem for p in MODEL_DIR.glob("*.yaml")) == sorted(PARAM_COUNTS)


@pytest.fixture(scope="module", params=sorted(PARAM_COUNTS))
def model(request: pytest.FixtureRequest) -> tuple[DictConfig, nn.Module, nn.Module]:
    torch.manual_seed(0)
    cfg = load(request.param)
    return cfg, instantiate(cfg.generator), instantiate(cfg.discriminator)


def test_yaml_keys_and_attributes(model: tuple[DictConfig, nn.Module, nn.Module]) -> None:
    cfg, gen, disc = model
    assert {"name", "image_size", "latent_dim", "init"} <= set(cfg)
    assert cfg.init in INITIALIZERS
    # num_classes only where the networks read it: a key that does nothing is refused by Hydra.
    num_classes = cfg.get("num_classes", 0)
    assert ("num_classes" in cfg) == ("num_classes" in cfg.generator)
    assert (gen.latent_dim, gen.num_classes, gen.image_size) == (
        cfg.latent_dim,
        num_classes,
        cfg.image_size,
    )
    assert (disc.num_classes, disc.image_size) == (num_classes, cfg.image_size)


def test_parameter_counts(model: tuple[DictConfig, nn.Module, nn.Module]) -> None:
    cfg, gen, disc = model
    assert (n_params(gen), n_params(disc)) == PARAM_COUNTS[cfg.name]


def test_forward_shapes_and_range(model: tuple[DictConfig, nn.Module, nn.Module]) -> None:
    cfg, gen, disc = model
    z = torch.randn(BATCH, cfg.latent_dim)
    labels = torch.randint(0, max(cfg.get("num_classes", 0), 1), (BATCH,))
    with torch.no_grad():
        images = gen(z, labels)
        logits = disc(images, labels)
    size = cfg.image_size
    assert images.shape == (BATCH, 1, size, size)
    assert images.min() >= -1 and images.max() <= 1
    assert logits.shape == (BATCH,)


def test_discriminators_emit_logits(model: tuple[DictConfig, nn.Module, nn.Module]) -> None:
    _, _, disc = model
    assert not any(isinstance(m, nn.Sigmoid) for m in disc.modules())


def test_projection_discriminator_has_no_sigmoid() -> None:
    disc = CGANDiscriminator(conditioning="projection")
    assert not any(isinstance(m, nn.Sigmoid) for m in disc.modules())
    assert n_params(disc) == 392_833 + 10 * 4096


def test_conditional_generator_requires_labels() -> None:
    with pytest.raises(ValueError, match="labels"):
        CGANGenerator()(torch.randn(BATCH, 100))


def test_conditional_generator_uses_labels() -> None:
    gen = CGANGenerator().eval()
    z = torch.randn(BATCH, 100)
    with torch.no_grad():
        a = gen(z, torch.zeros(BATCH, dtype=torch.long))
        b = gen(z, torch.ones(BATCH, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_projection_discriminator_uses_labels() -> None:
    torch.manual_seed(0)
    disc = CGANDiscriminator(conditioning="projection").eval()
    images = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        a = disc(images, torch.zeros(BATCH, dtype=torch.long))
        b = disc(images, torch.full((BATCH,), 7))
    assert a.shape == (BATCH,)
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="labels"):
        disc(images)


def test_unconditional_cgan_discriminator_ignores_labels() -> None:
    disc = CGANDiscriminator().eval()
    images = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert torch.equal(disc(images, torch.zeros(BATCH, dtype=torch.long)), disc(images))


def test_unknown_conditioning_raises() -> None:
    with pytest.raises(ValueError, match="conditioning='acgan' is not allowed.*none or projection"):
        CGANDiscriminator(conditioning="acgan")


def test_cgan_discriminator_minibatch_std_shows_it_the_spread_of_the_batch() -> None:
    torch.manual_seed(0)
    disc = CGANDiscriminator(conditioning="projection", minibatch_std=True).eval()
    plain = CGANDiscriminator(conditioning="projection").eval()
    # One extra input channel on the 4x4 conv: the group's spread map.
    last_conv = [m for m in disc.features if isinstance(m, torch.nn.Conv2d)][-1]
    assert last_conv.in_channels == 128 + 1
    images = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    labels = torch.arange(BATCH) % 10
    changed = images.clone()
    changed[1] += 0.5
    with torch.no_grad():
        assert disc(images, labels).shape == (BATCH,)
        assert not torch.allclose(disc(images, labels)[0], disc(changed, labels)[0])
        torch.testing.assert_close(plain(images, labels)[0], plain(changed, labels)[0])
        # A short last batch (not a multiple of the group) still works.
        assert disc(images[:3], labels[:3]).shape == (3,)
    with pytest.raises(
        ValueError, match="minibatch_std=4 is not allowed; it must be true or false"
    ):
        CGANDiscriminator(minibatch_std=4)


def test_cgan_widths_set_every_stage_and_the_projection() -> None:
    gen = CGANGenerator(num_classes=0, clusters=30, width=48)
    disc = CGANDiscriminator(num_classes=0, clusters=30, width=48)
    convs = [m for m in gen.net if isinstance(m, nn.ConvTranspose2d | nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(96, 96), (96, 48), (48, 1)]
    assert gen.net[0].out_features == 96 * 7 * 7
    d_convs = [m for m in disc.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in d_convs] == [48, 96, 192, 384]
    # The logit and the cluster projection read the widened features.
    assert disc.feature_dim == 384 * 4 * 4 == disc.linear.in_features
    assert disc.embed is not None and disc.embed.weight.shape == (30, 384 * 4 * 4)
    z = torch.randn(BATCH, 100)
    images = gen(z)
    assert images.shape == (BATCH, 1, 28, 28)
    assert disc(images, gen.cluster_of(z)).shape == (BATCH,)


@pytest.mark.parametrize(
    ("network", "key"),
    [(CGANGenerator, "model.generator.width"), (CGANDiscriminator, "model.discriminator.width")],
)
def test_cgan_width_refuses_a_non_positive_count_by_its_key(network: type, key: str) -> None:
    with pytest.raises(ValueError, match=rf"{key}=0 is not allowed; it must be an integer >= 1"):
        network(width=0)


@pytest.mark.parametrize("size", [28, 32])
def test_classifier_shapes(size: int) -> None:
    clf = MNISTClassifier().eval()
    x = torch.rand(BATCH, 1, size, size) * 2 - 1
    with torch.no_grad():
        assert clf(x).shape == (BATCH, 10)
        assert clf.features(x).shape == (BATCH, clf.feature_dim) == (BATCH, 128)


def test_classifier_crops_padding() -> None:
    clf = MNISTClassifier().eval()
    x28 = torch.rand(BATCH, 1, 28, 28) * 2 - 1
    x32 = nn.functional.pad(x28, (2, 2, 2, 2), value=-1.0)
    with torch.no_grad():
        assert torch.allclose(clf(x28), clf(x32))
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        clf(torch.zeros(1, 1, 30, 30))


def test_initialize_dcgan_scheme() -> None:
    torch.manual_seed(0)
    disc = initialize_(DCGANDiscriminator(), "dcgan")
    conv, bn = disc.net[3], disc.net[4]
    assert abs(conv.weight.std().item() - 0.02) < 0.002
    assert torch.all(conv.bias == 0)
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and torch.all(bn.bias == 0)


def test_initialize_default_leaves_weights() -> None:
    disc = DCGANDiscriminator()
    before = [p.clone() for p in disc.parameters()]
    initialize_(disc, "default")
    assert all(torch.equal(a, b) for a, b in zip(before, disc.parameters(), strict=True))


def test_initialize_unknown_scheme_raises() -> None:
    with pytest.raises(ValueError, match="'xavier'.*default, dcgan"):
        initialize_(DCGANDiscriminator(), "xavier")


def test_spectral_norm_wraps_layers() -> None:
    gen, disc = DCGANGenerator(), DCGANDiscriminator()
    for module in (gen, disc):
        assert apply_spectral_norm_(module) is module
        for m in module.modules():
            wrapped = parametrize.is_parametrized(m)
            assert wrapped == isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
    # Init after spectral norm must reach the stored weight, not a recomputed copy.
    initialize_(disc, "dcgan")
    assert abs(disc.net[0].parametrizations.weight.original.std().item() - 0.02) < 0.005
    with torch.no_grad():
        assert disc(gen(torch.randn(BATCH, 100))).shape == (BATCH,)


def test_seed000s_label_blind_discriminator_has_no_embedding() -> None:
    assert n_params(CGANDiscriminator(conditioning="none")) == 392_833
    assert n_params(CGANDiscriminator(conditioning="projection")) == 392_833 + 10 * 4096
