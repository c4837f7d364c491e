from __future__ import annotations

import torch

from bakeoff.data.transforms import BatchAugment


def test_flips_and_rot90_permute_voxels_only():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 5, 7, 7)
    y = BatchAugment(["flip", "rot90"])(x)
    assert y.shape == x.shape
    for a, b in zip(x, y):
        assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)
    assert not torch.equal(x, y)


def test_rot90_on_non_square_planes_keeps_shape():
    x = torch.randn(8, 1, 4, 6)
    assert BatchAugment(["rot90"])(x).shape == x.shape


def test_small_rotation_is_identity_at_zero_degrees_and_keeps_centre():
    x = torch.zeros(4, 1, 5, 9, 9)
    x[:, :, 2, 4, 4] = 1.0
    same = BatchAugment(["rotate"], rotate_degrees=0.0)(x)
    assert torch.equal(same, x)
    torch.manual_seed(1)
    rot = BatchAugment(["rotate"], rotate_degrees=20.0)(x)
    assert rot.shape == x.shape
    assert torch.all(rot[:, 0, 2].flatten(1).argmax(1) == 4 * 9 + 4)  # a centred spot stays centred
    assert torch.all(rot[:, 0, [0, 1, 3, 4]].abs().sum((1, 2, 3)) == 0)  # rotation stays in its z-plane


def test_augmentation_is_seeded():
    x = torch.randn(8, 1, 5, 7, 7)
    aug = BatchAugment(["flip", "rot90", "rotate"])
    torch.manual_seed(3)
    a = aug(x)
    torch.manual_seed(3)
    assert torch.equal(a, aug(x))
