"""Segmentation networks no library provides in this form: a ResNet encoder-decoder and ViT-V-Net.

Both work in 2D and 3D (``spatial_dims``) and return (N, num_outputs, *spatial) logits at the input size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from bakeoff.models.registry import register_model


def _layers(spatial_dims: int) -> tuple[type, type, type]:
    if spatial_dims == 2:
        return nn.Conv2d, nn.ConvTranspose2d, nn.InstanceNorm2d
    if spatial_dims == 3:
        return nn.Conv3d, nn.ConvTranspose3d, nn.InstanceNorm3d
    raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")


class ResidualBlock(nn.Module):
    def __init__(self, channels: int, spatial_dims: int) -> None:
        super().__init__()
        Conv, _, Norm = _layers(spatial_dims)
        self.body = nn.Sequential(Conv(channels, channels, 3, padding=1), Norm(channels, affine=True),
                                  nn.ReLU(inplace=True), Conv(channels, channels, 3, padding=1),
                                  Norm(channels, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class ResNetSeg(nn.Module):
    """ResNet-style encoder-decoder: a 7-wide stem, two stride-2 down-samplings, ``blocks`` residual
    blocks at 1/4 resolution, two transposed-convolution up-samplings, a 1x1 head; InstanceNorm."""

    def __init__(self, in_channels: int, num_outputs: int, spatial_dims: int = 2, base: int = 16,
                 blocks: int = 6) -> None:
        super().__init__()
        Conv, Up, Norm = _layers(spatial_dims)

        def cna(cin: int, cout: int, k: int, s: int = 1) -> list[nn.Module]:
            return [Conv(cin, cout, k, stride=s, padding=k // 2), Norm(cout, affine=True), nn.ReLU(inplace=True)]

        self.encoder = nn.Sequential(*cna(in_channels, base, 7), *cna(base, 2 * base, 3, 2), *cna(2 * base, 4 * base, 3, 2))
        self.blocks = nn.Sequential(*[ResidualBlock(4 * base, spatial_dims) for _ in range(blocks)])
        self.decoder = nn.Sequential(
            Up(4 * base, 2 * base, 3, stride=2, padding=1, output_padding=1), Norm(2 * base, affine=True), nn.ReLU(inplace=True),
            Up(2 * base, base, 3, stride=2, padding=1, output_padding=1), Norm(base, affine=True), nn.ReLU(inplace=True),
            Conv(base, num_outputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        pad = [p for s in reversed(size) for p in (0, (-s) % 4)]
        out = self.decoder(self.blocks(self.encoder(F.pad(x, pad))))
        return out[(...,) + tuple(slice(0, s) for s in size)]


@register_model(dense=True, small={"base": 4, "blocks": 1})
def resnet_seg(in_channels: int = 1, num_outputs: int = 2, spatial_dims: int = 2, base: int = 16,
               blocks: int = 6) -> nn.Module:
    """ResNet encoder-decoder for segmentation (2D/3D): ``blocks`` residual blocks between two
    down-samplings and two up-samplings, InstanceNorm."""
    return ResNetSeg(in_channels, num_outputs, spatial_dims, base, blocks)


class ViTVNet(nn.Module):
    """ViT-V-Net (Chen et al. 2021) for segmentation: a convolutional encoder to 1/4 resolution, a ViT
    bottleneck on ``patch``-sized tokens of those features (learned position embeddings, interpolated
    when the input size differs from ``input_shape``), and a convolutional decoder with skip connections."""

    def __init__(self, in_channels: int, num_outputs: int, spatial_dims: int = 2,
                 input_shape: Sequence[int] = (64, 64), base: int = 16, patch: int = 2, hidden: int = 96,
                 layers: int = 4, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        Conv, Up, Norm = _layers(spatial_dims)
        self.spatial_dims, self.patch = spatial_dims, patch

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(Conv(cin, cout, 3, padding=1), Norm(cout, affine=True), nn.LeakyReLU(0.2, inplace=True),
                                 Conv(cout, cout, 3, padding=1), Norm(cout, affine=True), nn.LeakyReLU(0.2, inplace=True))

        self.enc1, self.enc2, self.enc3 = block(in_channels, base), block(base, 2 * base), block(2 * base, 4 * base)
        self.pool = (nn.MaxPool2d if spatial_dims == 2 else nn.MaxPool3d)(2)
        self.embed = Conv(4 * base, hidden, patch, stride=patch)
        self.grid = tuple(max(1, int(s) // (4 * patch)) for s in input_shape)
        n_tokens = 1
        for g in self.grid:
            n_tokens *= g
        self.pos = nn.Parameter(torch.zeros(1, hidden, *self.grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(hidden, heads, int(hidden * mlp_ratio), dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.vit = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.unembed = Up(hidden, 4 * base, patch, stride=patch)
        self.dec3 = block(8 * base, 4 * base)
        self.up2 = Up(4 * base, 2 * base, 2, stride=2)
        self.dec2 = block(4 * base, 2 * base)
        self.up1 = Up(2 * base, base, 2, stride=2)
        self.dec1 = block(2 * base, base)
        self.head = Conv(base, num_outputs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[2:]
        m = 4 * self.patch
        x = F.pad(x, [p for s in reversed(size) for p in (0, (-s) % m)])
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        t = self.embed(e3)
        pos = self.pos
        if tuple(t.shape[2:]) != self.grid:
            mode = "bilinear" if self.spatial_dims == 2 else "trilinear"
            pos = F.interpolate(pos, size=t.shape[2:], mode=mode, align_corners=False)
        t = t + pos
        grid = t.shape[2:]
        tokens = self.norm(self.vit(t.flatten(2).transpose(1, 2)))
        t = tokens.transpose(1, 2).reshape(len(x), -1, *grid)
        d3 = self.dec3(torch.cat([self.unembed(t), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        out = self.head(d1)
        return out[(...,) + tuple(slice(0, s) for s in size)]


@register_model(dense=True, small={"base": 4, "hidden": 16, "layers": 1, "heads": 2})
def vit_v_net(in_channels: int = 1, num_outputs: int = 2, spatial_dims: int = 2,
              input_shape: Sequence[int] = (64, 64), base: int = 16, patch: int = 2, hidden: int = 96,
              layers: int = 4, heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0) -> nn.Module:
    """ViT-V-Net: convolutional encoder, ViT bottleneck on patch tokens, convolutional decoder with skips."""
    return ViTVNet(in_channels, num_outputs, spatial_dims, input_shape, base, patch, hidden, layers, heads,
                   mlp_ratio, dropout)
