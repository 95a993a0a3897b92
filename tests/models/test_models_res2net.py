"""Res2Net-50 encoder: timm-compatible state dict, parameter count, checkpoint loading."""

from __future__ import annotations

import math

import pytest
import torch

from reference_models import create_model
from reference_models.res2net import Res2NetEncoder
from reference_models.weights import adapt_first_conv, load_backbone_weights

# timm res2net50_26w_4s = ResNet(Bottle2neck, [3, 4, 6, 3], base_width=26, scale=4):
# stem conv1 7x7 3->64 + bn1; stage planes 64/128/256/512, width floor(planes*26/64)
# = 26/52/104/208, bottleneck conv1 1x1 -> 4*width, convs.0-2 3x3 width->width (+ bns),
# conv3 1x1 4*width -> 4*planes, downsample.0 1x1 conv + downsample.1 BN in block 0;
# classifier fc 2048 -> 1000. Published: 25.70 M parameters, 4.2 GMACs at 224 x 224.
TIMM_LAYERS = (3, 4, 6, 3)
TIMM_PLANES = (64, 128, 256, 512)
TIMM_TOTAL_PARAMS_M = 25.70
FC_PARAMS = 2048 * 1000 + 1000


def _bn(prefix: str, n: int) -> dict[str, tuple[int, ...]]:
    shapes = {f"{prefix}.{k}": (n,) for k in ("weight", "bias", "running_mean", "running_var")}
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def timm_res2net50_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of timm's res2net50_26w_4s state dict, written from its definition."""
    shapes = {"conv1.weight": (64, 3, 7, 7), **_bn("bn1", 64)}
    inplanes = 64
    for li, (planes, n) in enumerate(zip(TIMM_PLANES, TIMM_LAYERS, strict=True), start=1):
        width = math.floor(planes * 26 / 64)
        for k in range(n):
            p = f"layer{li}.{k}"
            shapes[f"{p}.conv1.weight"] = (4 * width, inplanes, 1, 1)
            shapes.update(_bn(f"{p}.bn1", 4 * width))
            for s in range(3):
                shapes[f"{p}.convs.{s}.weight"] = (width, width, 3, 3)
                shapes.update(_bn(f"{p}.bns.{s}", width))
            shapes[f"{p}.conv3.weight"] = (4 * planes, 4 * width, 1, 1)
            shapes.update(_bn(f"{p}.bn3", 4 * planes))
            if k == 0:
                shapes[f"{p}.downsample.0.weight"] = (4 * planes, inplanes, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", 4 * planes))
            inplanes = 4 * planes
    shapes["fc.weight"] = (1000, 2048)
    shapes["fc.bias"] = (1000,)
    return shapes


def fake_checkpoint(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(s, generator=g) if s else torch.tensor(7)
        for k, s in timm_res2net50_shapes().items()
    }


def test_expected_key_list_spot_checks():
    shapes = timm_res2net50_shapes()
    assert len(shapes) == 512  # 510 encoder entries + fc.weight + fc.bias
    assert shapes["layer1.0.conv1.weight"] == (104, 64, 1, 1)
    assert shapes["layer2.0.convs.2.weight"] == (52, 52, 3, 3)
    assert shapes["layer3.5.conv3.weight"] == (1024, 416, 1, 1)
    assert shapes["layer4.0.downsample.0.weight"] == (2048, 1024, 1, 1)
    assert shapes["layer4.2.bn3.running_var"] == (2048,)


def test_encoder_state_dict_matches_timm():
    enc = Res2NetEncoder(in_channels=3)
    expected = {k: v for k, v in timm_res2net50_shapes().items() if not k.startswith("fc.")}
    own = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    assert own == expected


def test_paper_encoder_parameter_count():
    """Res2Net-50 26w4s is 25.70 M with its 2.049 M classifier: 23.65 M without it."""
    enc3 = Res2NetEncoder(in_channels=3)
    n3 = sum(p.numel() for p in enc3.parameters())
    assert n3 == pytest.approx(TIMM_TOTAL_PARAMS_M * 1e6 - FC_PARAMS, abs=0.01e6)
    assert n3 == 23_650_120
    # The CT encoder has one input channel: 2 x 64 x 7 x 7 fewer stem weights.
    enc1 = create_model("stage1", "paper").encoder
    assert sum(p.numel() for p in enc1.parameters()) == n3 - 2 * 64 * 49


def test_paper_encoder_macs_match_published():
    from reference_models.complexity import count_macs

    enc = Res2NetEncoder(in_channels=3)
    assert count_macs(enc, 224) == pytest.approx(4.2e9, rel=0.02)


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "module", "file"])
def test_load_rgb_checkpoint_into_ct_encoder(tmp_path, wrap):
    ckpt = fake_checkpoint()
    enc = create_model("stage1", "paper").encoder  # 1 input channel
    if wrap == "state_dict":
        source = {"state_dict": ckpt, "epoch": 3}
    elif wrap == "module":
        source = {f"module.{k}": v for k, v in ckpt.items()}
    elif wrap == "file":
        source = tmp_path / "res2net50_26w_4s.pth"
        torch.save(ckpt, source)
    else:
        source = ckpt
    ignored = load_backbone_weights(enc, source)
    assert ignored == ["fc.bias", "fc.weight"]
    sd = enc.state_dict()
    torch.testing.assert_close(sd["layer3.2.convs.1.weight"], ckpt["layer3.2.convs.1.weight"])
    torch.testing.assert_close(sd["layer1.0.bn1.running_var"], ckpt["layer1.0.bn1.running_var"])
    torch.testing.assert_close(sd["conv1.weight"], ckpt["conv1.weight"].sum(1, keepdim=True))


def test_first_conv_adaptation_preserves_grey_response():
    w = torch.randn(8, 3, 7, 7, dtype=torch.float64)
    x = torch.randn(1, 1, 16, 16, dtype=torch.float64)
    rgb = torch.nn.functional.conv2d(x.repeat(1, 3, 1, 1), w)
    for k in (1, 3, 5):
        wk = adapt_first_conv(w, k)
        assert wk.shape == (8, k, 7, 7)
        torch.testing.assert_close(torch.nn.functional.conv2d(x.repeat(1, k, 1, 1), wk), rgb)


def test_context_encoder_loads():
    enc = create_model("dist_dcff", "paper", context=5).seg_branch.encoder
    load_backbone_weights(enc, fake_checkpoint())
    assert enc.conv1.weight.shape == (64, 5, 7, 7)


def test_checkpoint_without_batch_counters_loads():
    """Every tensor of the checkpoint lands in the encoder (the counters keep their own)."""
    ckpt = {k: v for k, v in fake_checkpoint().items() if "num_batches_tracked" not in k}
    enc = Res2NetEncoder(in_channels=3)
    ignored = load_backbone_weights(enc, ckpt)
    assert ignored == ["fc.bias", "fc.weight"]
    own = enc.state_dict()
    loaded = [k for k in ckpt if not k.startswith("fc.")]
    # 85 batch norms (stem 1, 5 per block in 16 blocks, 4 downsamples): no counters given
    assert len(loaded) == 510 - 85
    for key in loaded:
        assert torch.equal(own[key], ckpt[key]), key


def test_mismatched_checkpoints_raise(tmp_path):
    enc = Res2NetEncoder(in_channels=3)
    ckpt = fake_checkpoint()
    missing = {k: v for k, v in ckpt.items() if k != "layer2.1.conv3.weight"}
    with pytest.raises(ValueError, match="layer2.1.conv3.weight"):
        load_backbone_weights(enc, missing)
    with pytest.raises(ValueError, match="unexpected"):
        load_backbone_weights(enc, {**ckpt, "layer5.0.conv1.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="shapes differ"):
        load_backbone_weights(enc, {**ckpt, "layer1.0.bn1.weight": torch.zeros(3)})
    small = create_model("stage1", "small").encoder
    with pytest.raises(ValueError, match="shapes differ"):
        load_backbone_weights(small, {k: v for k, v in ckpt.items() if k in small.state_dict()})
    with pytest.raises(ValueError, match="not found"):
        load_backbone_weights(enc, tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read"):
        load_backbone_weights(enc, bad)
