"""ProGAN's sliced Wasserstein distance: the Laplacian pyramid against the reference's cv2-style pyrDown /
pyrUp (scipy's mirror convolution), exact reconstruction, the per-channel normalisation, and the distance's
behaviour on near and far image sets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch

from gancli.metrics.swd import laplacian_pyramid, normalise, pyr_down, pyr_up, sliced_wasserstein, swd

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]).astype(np.float32) / 256


def test_the_pyramid_matches_the_reference_pyr_down_and_pyr_up_and_reconstructs():
    x = np.random.default_rng(0).uniform(0, 255, (2, 3, 32, 32)).astype(np.float32)
    down = scipy.ndimage.convolve(x, KERNEL[None, None], mode="mirror")[:, :, ::2, ::2]
    assert np.allclose(pyr_down(torch.from_numpy(x)).numpy(), down, atol=1e-3)
    up = np.zeros((2, 3, 32, 32), np.float32)
    up[:, :, ::2, ::2] = down
    assert np.allclose(
        pyr_up(torch.from_numpy(down)).numpy(),
        scipy.ndimage.convolve(up, 4 * KERNEL[None, None], mode="mirror"),
        atol=1e-3,
    )
    levels = laplacian_pyramid(torch.from_numpy(x), 2)
    assert torch.allclose(pyr_up(levels[1]) + levels[0], torch.from_numpy(x), atol=1e-3)


def test_descriptors_are_normalised_per_colour_channel():
    torch.manual_seed(0)  # fixed inputs: float32 sums of a random draw must not decide the outcome
    d = normalise(torch.randn(500, 3, 7, 7) * torch.tensor([1.0, 5.0, 0.1]).view(1, 3, 1, 1) + 3)
    per_channel = d.view(500, 3, 49)
    assert torch.allclose(per_channel.mean(dim=(0, 2)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(per_channel.std(dim=(0, 2), unbiased=False), torch.ones(3), atol=1e-4)


def test_the_sliced_distance_is_zero_for_equal_sets_and_grows_with_a_shift():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 8, generator=g)
    assert sliced_wasserstein(a, a.clone(), g) == 0.0
    # a shift by s along every axis moves each unit direction's projection by s·Σd, |Σd| ≈ √(2·8/π)/√8 on average
    assert 0.5 < sliced_wasserstein(a, a + 1.0, g) < 1.0


@pytest.mark.slow
def test_swd_ranks_a_near_set_below_a_far_one():
    rng = np.random.default_rng(0)
    smooth = torch.from_numpy(rng.normal(size=(96, 3, 4, 4))).float()
    real = torch.nn.functional.interpolate(smooth, size=32, mode="bilinear").clamp(-1, 1)
    near = torch.nn.functional.interpolate(
        torch.from_numpy(rng.normal(size=(96, 3, 4, 4))).float(), size=32, mode="bilinear"
    ).clamp(-1, 1)
    far = torch.from_numpy(rng.uniform(-1, 1, (96, 3, 32, 32))).float()  # white noise: all fine detail
    assert len(swd(real, near)) == 2  # 32 and 16 px
    assert sum(swd(real, near)) < sum(swd(real, far))
