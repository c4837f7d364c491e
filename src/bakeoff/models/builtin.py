"""Built-in networks for which no library has a drop-in equivalent."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from bakeoff.models.registry import register_model

_LAYERS = {
    2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
    3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d),
}


class SimpleCNN3d(nn.Module):
    """The zms2 spot classifier (Eck, Moretti & Schlomann 2024), layer for layer.

    Conv3d(in->4, 3, same) + ReLU + MaxPool3d(2), Conv3d(4->4, 3, same) + ReLU + MaxPool3d(2), Flatten,
    Linear(->512) + ReLU, Dropout(0.5), Linear(512->outputs). 17,957 parameters on (1, 9, 11, 11).
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1,
                 input_shape: Sequence[int] = (9, 11, 11), hidden: int = 512, dropout: float = 0.5) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"simple_cnn3d needs 3D input (D, H, W), got input_shape {tuple(input_shape)}")
        if min(input_shape) < 4:
            raise ValueError(f"simple_cnn3d needs every spatial size >= 4 (two 2x poolings), got {tuple(input_shape)}")
        self.features = nn.Sequential(
            nn.Conv3d(in_channels, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool3d(2),
            nn.Conv3d(4, 4, 3, padding="same"), nn.ReLU(), nn.MaxPool3d(2),
            nn.Flatten(),
        )
        flat = 4
        for s in input_shape:
            flat *= (s // 2) // 2
        self.head = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_outputs))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_model(dims=(3,), small={"hidden": 8})
def simple_cnn3d(in_channels: int = 1, num_outputs: int = 1, input_shape: Sequence[int] = (9, 11, 11),
                 hidden: int = 512, dropout: float = 0.5) -> nn.Module:
    """The published zms2 3D spot classifier (17,957 parameters on 9x11x11 patches)."""
    return SimpleCNN3d(in_channels, num_outputs, input_shape, hidden, dropout)


class SqueezeExcite(nn.Module):
    """Channel attention: global average pool -> FC -> ReLU -> FC -> sigmoid -> rescale (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int = 16, spatial_dims: int = 3) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.pool = _LAYERS[spatial_dims][3](1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(self.pool(x).flatten(1))
        return x * w.view(*w.shape, *([1] * (x.ndim - 2)))


class SEResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN (+ SE), added to a (projected) shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, spatial_dims: int, use_se: bool, reduction: int) -> None:
        super().__init__()
        conv, bn, _, _ = _LAYERS[spatial_dims]
        self.body = nn.Sequential(
            conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True),
            conv(cout, cout, 3, padding=1, bias=False), bn(cout),
        )
        self.se = SqueezeExcite(cout, reduction, spatial_dims) if use_se else nn.Identity()
        self.shortcut = (nn.Identity() if cin == cout
                         else nn.Sequential(conv(cin, cout, 1, bias=False), bn(cout)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.se(self.body(x)) + self.shortcut(x))


class SEResNet(nn.Module):
    """Residual network with squeeze-and-excitation, 2D or 3D from one definition.

    Stem conv (in -> base) + BN + ReLU; ``num_blocks`` SE-residual blocks doubling the width, each
    followed by a 2x max-pool along every axis still at least 2 long; global average pool; dropout;
    linear head.
    """

    def __init__(self, in_channels: int = 1, num_outputs: int = 1, spatial_dims: int = 3,
                 input_shape: Sequence[int] | None = None, base_channels: int = 32, num_blocks: int = 3,
                 use_se: bool = True, se_reduction: int = 16, dropout: float = 0.3) -> None:
        super().__init__()
        if spatial_dims not in _LAYERS:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if input_shape is not None and len(input_shape) != spatial_dims:
            raise ValueError(f"input_shape {tuple(input_shape)} does not have {spatial_dims} dimensions")
        conv, bn, pool, gap = _LAYERS[spatial_dims]
        self.stem = nn.Sequential(conv(in_channels, base_channels, 3, padding=1, bias=False), bn(base_channels),
                                  nn.ReLU(inplace=True))
        size = list(input_shape) if input_shape is not None else [64] * spatial_dims
        blocks: list[nn.Module] = []
        cin = base_channels
        for i in range(num_blocks):
            cout = base_channels * 2 ** (i + 1)
            blocks.append(SEResidualBlock(cin, cout, spatial_dims, use_se, se_reduction))
            kernel = tuple(2 if s >= 2 else 1 for s in size)
            if any(k == 2 for k in kernel):
                blocks.append(pool(kernel))
            size = [s // k for s, k in zip(size, kernel)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = gap(1)
        self.num_features = cin
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_outputs))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x).flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(small={"base_channels": 4, "num_blocks": 1})
def se_resnet(in_channels: int = 1, num_outputs: int = 1, spatial_dims: int = 3,
              input_shape: Sequence[int] | None = None, base_channels: int = 32, num_blocks: int = 3,
              use_se: bool = True, se_reduction: int = 16, dropout: float = 0.3) -> nn.Module:
    """SE-ResNet for 2D or 3D classification (``spatial_dims``), width ``base_channels``, ``num_blocks`` stages."""
    return SEResNet(in_channels, num_outputs, spatial_dims, input_shape, base_channels, num_blocks, use_se,
                    se_reduction, dropout)
