"""Registry, configurations and the documented output keys and shapes of every network."""

from __future__ import annotations

import pytest
import torch

from reference_models import create_model, list_models, make_config
from reference_models.e2net import E2Net
from reference_models.r2unet import R2UNet
from reference_models.res2net import Res2NetEncoder

NAMES = ["stage1", "baseline", "edge", "dist", "edge_dcff", "dist_dcff"]
TWO_BRANCH = {"edge", "dist", "edge_dcff", "dist_dcff"}


def test_list_models_is_table3():
    assert list_models() == NAMES


@pytest.mark.parametrize(
    "name, stage, out, target, dcff",
    [
        ("stage1", 1, 1, "none", False),
        ("baseline", 2, 2, "none", False),
        ("edge", 2, 2, "edge", False),
        ("dist", 2, 2, "dist", False),
        ("edge_dcff", 2, 2, "edge", True),
        ("dist_dcff", 2, 2, "dist", True),
    ],
)
def test_config_fields(name, stage, out, target, dcff):
    for profile, sizes in (("paper", {1: 448, 2: 256}), ("small", {1: 112, 2: 64})):
        c = make_config(name, profile)
        assert (c.name, c.stage, c.out_channels, c.edge_target, c.dcff) == (
            name,
            stage,
            out,
            target,
            dcff,
        )
        assert c.context == 1 and c.input_size == sizes[stage] and c.profile == profile
    paper = make_config(name, "paper")
    assert paper.layers == (3, 4, 6, 3) and paper.base_width == 26 and paper.scale == 4
    assert paper.decoder_channels == 32


def test_bad_names_and_overrides_raise():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("unet")
    with pytest.raises(ValueError, match="unknown profile"):
        create_model("stage1", "huge")
    with pytest.raises(ValueError, match="context"):
        create_model("stage1", context=2)
    with pytest.raises(ValueError, match="unknown config fields"):
        create_model("stage1", depth=3)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("context", [1, 3])
@pytest.mark.parametrize("hw", [(64, 64), (37, 50), (9, 5)])
def test_small_forward_shapes(name, context, hw):
    torch.manual_seed(0)
    model = create_model(name, "small", context=context)
    assert model.in_channels == context == model.config.context
    out_ch = model.config.out_channels
    x = torch.randn(2, context, *hw)
    out = model(x)
    keys = {"seg", "s1", "edge"} if name in TWO_BRANCH else {"seg"}
    assert set(out) == keys
    for key, value in out.items():
        assert value.shape == (2, out_ch, *hw), key
        assert torch.isfinite(value).all(), key


@pytest.mark.parametrize("name", NAMES)
def test_encoders_reachable(name):
    model = create_model(name, "small")
    if name in TWO_BRANCH:
        assert isinstance(model, E2Net)
        assert model.encoders() == [model.seg_branch.encoder, model.edge_branch.encoder]
        assert model.seg_branch.encoder is not model.edge_branch.encoder
        assert (model.dcff is not None) == name.endswith("_dcff")
    else:
        assert isinstance(model, R2UNet)
        assert model.encoders() == [model.encoder]
    for enc in model.encoders():
        assert isinstance(enc, Res2NetEncoder) and enc.conv1.in_channels == model.in_channels


def test_features_are_at_the_paper_scales():
    enc = create_model("stage1", "paper").encoder
    with torch.no_grad():
        feats = enc.eval()(torch.zeros(1, 1, 64, 96))
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 32, 48),
        (1, 256, 16, 24),
        (1, 512, 8, 12),
        (1, 1024, 4, 6),
        (1, 2048, 2, 3),
    ]


@pytest.mark.parametrize("name", NAMES)
def test_paper_profile_builds_and_runs_small_input(name):
    model = create_model(name, "paper").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 64, 64))
    assert all(v.shape == (1, model.config.out_channels, 64, 64) for v in out.values())


def test_paper_profile_odd_size_and_context():
    model = create_model("dist_dcff", "paper", context=3).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 33, 47))
    assert set(out) == {"seg", "s1", "edge"}
    assert all(v.shape == (1, 2, 33, 47) for v in out.values())


def test_padding_keeps_pixels_aligned():
    """Padding is bottom/right only: the top-left output does not depend on the padded size."""
    torch.manual_seed(0)
    model = create_model("stage1", "small").eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        full = model(x)["seg"]
        # Cropping the input to 63 rows pads it back to 64 by replicating row 62.
        x2 = x.clone()
        x2[:, :, 63] = x2[:, :, 62]
        cropped = model(x[:, :, :63])["seg"]
        ref = model(x2)["seg"][:, :, :63]
    assert cropped.shape == (1, 1, 63, 64)
    torch.testing.assert_close(cropped, ref)
    assert not torch.equal(full[:, :, :63], ref)  # the padding really was replication


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    from reference_models.losses import objective

    torch.manual_seed(0)
    model = create_model(name, "small")
    x = torch.randn(2, 1, 64, 64)
    mask = (torch.rand(2, model.config.out_channels, 64, 64) > 0.5).float()
    loss, _ = objective(model.config, model(x), mask)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    zero = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.any()]
    assert not missing, missing
    assert not zero, zero
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_config_round_trip_rebuilds_the_same_network():
    import json

    from reference_models import ModelConfig, build_model

    model = create_model("edge_dcff", "small", context=3)
    data = json.loads(json.dumps(model.config.to_dict()))
    config = ModelConfig.from_dict(data)
    assert config == model.config
    rebuilt = build_model(config)
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    with pytest.raises(ValueError, match="unknown config fields"):
        ModelConfig.from_dict({**data, "depth": 2})
