"""Activation maps of a named layer of a network, for the report's feature-map figure."""

from __future__ import annotations

import numpy as np
import torch


def feature_maps(model: torch.nn.Module, layer: str, x: np.ndarray, channels: int = 8) -> dict[str, np.ndarray]:
    """The first ``channels`` activation maps of module ``layer`` for one input (C, *spatial)."""
    modules = dict(model.named_modules())
    if layer not in modules:
        raise ValueError(f"feature_layer {layer!r} is not a module of this network; some names: "
                         f"{[n for n in modules if n][:8]}")
    seen: dict[str, torch.Tensor] = {}
    handle = modules[layer].register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        model.eval()
        with torch.inference_mode():
            device = next(model.parameters()).device
            model(torch.from_numpy(x)[None].to(device))
    finally:
        handle.remove()
    out = seen.get("out")
    if not isinstance(out, torch.Tensor) or out.ndim < 3:
        raise ValueError(f"feature_layer {layer!r} does not output a (N, C, *spatial) tensor")
    return {"features": out[0, :channels].float().cpu().numpy().astype(np.float16), "input": x.astype(np.float16)}
