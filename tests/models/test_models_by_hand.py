"""Edge targets on a non-square shape and DCFF against a reference written from the module
docstring's equations (paper section 2, Fig. 2c-d), both with hand-set numbers, so a wrong
neighbourhood, wiring, residual or combine mode gives a different number (RM05, RM07-RM09
in tools/mutate.py). Shape and gradient tests pass any of these."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reference_models.dcff import DCFF, CrossRefine
from reference_models.targets import distance_map, edge_map

# A 5x5 square with its top-right 2x2 corner cut off, in a 7x7 image (an L). Pixel (3, 3)
# touches the cut only diagonally: not an edge pixel of the 4-neighbourhood erosion.
L_SHAPE = np.zeros((7, 7), np.uint8)
L_SHAPE[1:6, 1:6] = 1
L_SHAPE[1:3, 4:6] = 0
L_EDGE = np.array(
    [
        [0, 0, 0, 0, 0, 0, 0],
        [0, 1, 1, 1, 0, 0, 0],
        [0, 1, 0, 1, 0, 0, 0],
        [0, 1, 0, 0, 1, 1, 0],
        [0, 1, 0, 0, 0, 1, 0],
        [0, 1, 1, 1, 1, 1, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    np.float32,
)


def test_edge_of_a_non_square_shape_uses_the_4_neighbourhood():
    np.testing.assert_array_equal(edge_map(L_SHAPE), L_EDGE)


def test_distance_map_of_a_non_square_shape_by_brute_force():
    """T = M (1 - D / max D), D the Euclidean distance to the nearest edge pixel (loops)."""
    edges = [(y, x) for y, x in itertools.product(range(7), range(7)) if L_EDGE[y, x]]
    depth = np.zeros((7, 7))
    for y, x in itertools.product(range(7), range(7)):
        if L_SHAPE[y, x]:
            depth[y, x] = min(np.hypot(y - ey, x - ex) for ey, ex in edges)
    # the interior pixels (2,2), (3,2), (3,3), (4,2), (4,3), (4,4) are all 1 from an edge
    assert sorted(depth[depth > 0].tolist()) == [1.0] * 6
    expected = L_SHAPE * (1.0 - depth / depth.max())
    np.testing.assert_allclose(distance_map(L_SHAPE), expected, atol=1e-6)


def test_distance_map_is_euclidean_not_city_block():
    """A disc of radius 4: interior depths mix axis and diagonal steps, so a city-block or
    chessboard distance transform gives other values than the brute-force Euclidean one."""
    yy, xx = np.mgrid[:11, :11]
    disc = ((yy - 5) ** 2 + (xx - 5) ** 2 <= 16).astype(np.uint8)
    edge = edge_map(disc)
    pts = np.argwhere(edge > 0)
    depth = np.zeros((11, 11))
    for y, x in np.argwhere(disc > 0):
        depth[y, x] = np.min(np.hypot(pts[:, 0] - y, pts[:, 1] - x))
    expected = disc * (1.0 - depth / depth.max())
    np.testing.assert_allclose(distance_map(disc), expected, atol=1e-6)


# --- DCFF -------------------------------------------------------------------------------
N_SCALES = 3
SIZES = (8, 4, 2)


def _set_convs(module: CrossRefine, weights: dict) -> None:
    """Every ConvBNReLU of `module` becomes relu(centre tap . input): 3x3 kernel zero but
    its centre, batch norm the identity (eval mode, mean 0, var 1, eps 0)."""
    for i, scale in enumerate(module.scales):
        for kind in ("combine", "chain"):
            for k, block in enumerate(getattr(scale, kind)):
                conv, bn = block[0], block[1]
                with torch.no_grad():
                    conv.weight.zero_()
                    conv.weight[0, :, 1, 1] = torch.tensor(weights[(kind, i, i + k)])
                    bn.eps = 0.0
                    bn.running_mean.zero_()
                    bn.running_var.fill_(1.0)
                    bn.weight.fill_(1.0)
                    bn.bias.zero_()


def _weights(mode: str, offset: float) -> dict:
    """Distinct positive centre taps per (kind, target scale i, scale j)."""
    out = {}
    n_in = 2 if mode == "concat" else 1
    keys = [
        (kind, i, j)
        for i in range(N_SCALES)
        for kind in ("combine", "chain")
        for j in range(i, N_SCALES - (kind == "chain"))
    ]
    for n, key in enumerate(keys):
        out[key] = [offset + 0.1 * n + 0.05 * c for c in range(n_in)]
    return out


def _pool(x: torch.Tensor, f: int) -> torch.Tensor:
    """Mean over f x f blocks, by reshaping (not torch's pooling)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // f, f, w // f, f).mean(dim=(3, 5))


def _reference(a: list, b: list, weights: dict, mode: str) -> list:
    """A'_i = A_i + h_i with G_j = conv_j(join(down(A_i), B_j)), h_{n-1} = G_{n-1},
    h_j = chain_j(join(up(h_{j+1}), G_j)); join = (concat | product)."""

    def unit(kind, i, j, x, y):
        w = weights[(kind, i, j)]
        return torch.relu(w[0] * x + w[1] * y) if mode == "concat" else torch.relu(w[0] * x * y)

    out = []
    for i in range(N_SCALES):
        g = {j: unit("combine", i, j, _pool(a[i], 2 ** (j - i)), b[j]) for j in range(i, N_SCALES)}
        h = g[N_SCALES - 1]
        for j in range(N_SCALES - 2, i - 1, -1):
            up = F.interpolate(h, size=g[j].shape[-2:], mode="bilinear", align_corners=False)
            h = unit("chain", i, j, up, g[j])
        out.append(a[i] + h)
    return out


def _features(seed: int) -> list:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 1, s, s, generator=gen, dtype=torch.float64) + 0.1 for s in SIZES]


def test_dcff_matches_the_equations_in_both_directions():
    """Segmentation features refined by concatenation with the edge branch, edge features
    by product with the segmentation branch, each plus its own input (the residual)."""
    torch.manual_seed(0)
    module = DCFF(N_SCALES, 1).double().eval()
    w_seg, w_edge = _weights("concat", 0.3), _weights("product", 0.7)
    _set_convs(module.seg, w_seg)
    _set_convs(module.edge, w_edge)
    seg, edge = _features(1), _features(2)
    with torch.no_grad():
        got_seg, got_edge = module(seg, edge)
    for got, want in zip(got_seg, _reference(seg, edge, w_seg, "concat"), strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(got_edge, _reference(edge, seg, w_edge, "product"), strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("mode", ["concat", "product"])
def test_one_direction_on_hand_numbers(mode):
    """The coarsest target scale (2x2) has one G and no chain: A' = A + relu(conv(join))."""
    module = CrossRefine(N_SCALES, 1, mode).double().eval()
    weights = _weights(mode, 0.5)
    _set_convs(module, weights)
    a, b = _features(3), _features(4)
    with torch.no_grad():
        got = module(a, b)[N_SCALES - 1]
    w = weights[("combine", 2, 2)]
    if mode == "concat":
        want = a[2] + torch.relu(w[0] * a[2] + w[1] * b[2])
    else:
        want = a[2] + torch.relu(w[0] * a[2] * b[2])
    torch.testing.assert_close(got, want)


def test_e2net_feeds_dcff_segmentation_then_edge_features_and_decodes_its_output():
    """In E2Net the DCFF gets (segmentation branch features, edge branch features) and
    each branch's decoder gets its own refined features: here DCFF is replaced by a
    recorder that zeroes the edge side, so only the segmentation decoder sees features."""
    from reference_models import create_model
    from reference_models.blocks import pad_to_stride

    torch.manual_seed(0)
    model = create_model("dist_dcff", "small").eval()
    x = torch.randn(1, model.in_channels, 64, 64)
    seen = {}

    def fake_dcff(seg, edge):
        seen["seg"], seen["edge"] = seg, edge
        return seg, [torch.zeros_like(f) for f in edge]

    padded, _ = pad_to_stride(x)
    with torch.no_grad():
        seg_feats = model.seg_branch.features(padded)
        edge_feats = model.edge_branch.features(padded)
        model.dcff.forward = fake_dcff
        out = model(x)
        zero_edge = model.edge_branch.decode([torch.zeros_like(f) for f in edge_feats])
        want_edge = model.edge_branch.logits(zero_edge, padded, (64, 64))
    for got, want in zip(seen["seg"], seg_feats, strict=True):
        torch.testing.assert_close(got, want)
    for got, want in zip(seen["edge"], edge_feats, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(out["edge"], want_edge)
