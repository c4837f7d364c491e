"""Grad-CAM heatmaps of 2D classification contenders (pytorch-grad-cam, an optional extra).

The target layer is chosen per architecture: for vision transformers (timm models with ``patch_embed``
and ``blocks``) the first norm of the last block, with the patch tokens reshaped to their grid; for timm
CNNs the deepest named stage whose maps are at least 4 pixels across; for everything else the module that
gives the last feature map (found by one forward pass), else the last 2D convolution. The heatmap
explains the predicted class.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from bakeoff.errors import BakeoffError


def target_layer(model: nn.Module, size: tuple[int, int] | None = None,
                 example: torch.Tensor | None = None) -> tuple[nn.Module, Any, str]:
    """(layer, reshape_transform or None, description) for Grad-CAM."""
    if hasattr(model, "patch_embed") and hasattr(model, "blocks") and len(model.blocks):
        grid = tuple(getattr(model.patch_embed, "grid_size", ()))
        prefix = int(getattr(model, "num_prefix_tokens", 1))

        def tokens_to_grid(t: torch.Tensor) -> torch.Tensor:
            t = t[:, prefix:, :]
            h, w = grid if len(grid) == 2 else (int(round(t.shape[1] ** 0.5)),) * 2
            return t.reshape(t.shape[0], h, w, t.shape[2]).permute(0, 3, 1, 2)

        return model.blocks[-1].norm1, tokens_to_grid, "blocks[-1].norm1 (ViT tokens reshaped to the patch grid)"
    info = getattr(model, "feature_info", None)
    if info is not None and size is not None:
        # timm CNNs name their stages: the deepest one whose maps are still at least 4 pixels across
        dicts = info.get_dicts() if hasattr(info, "get_dicts") else list(info)
        stages = [d for d in dicts if isinstance(d, dict) and d.get("module")]
        usable = [d for d in stages if min(size) // int(d.get("reduction", 1)) >= 4] or stages[:1]
        if usable:
            d = usable[-1]
            return (model.get_submodule(d["module"]), None,
                    f"{d['module']} (timm stage, 1/{d.get('reduction')} resolution)")
    if example is not None:
        found = _last_feature_map(model, example)
        if found is not None:
            return found
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise BakeoffError(f"Grad-CAM: {type(model).__name__} has no 2D convolution and is not a ViT")
    name, layer = convs[-1]
    return layer, None, f"{name} (last Conv2d)"


def _last_feature_map(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, None, str] | None:
    """The module that gives the network's last feature map (the last output, in the order the forward pass
    computes them, that is a 2D map at least 2 pixels across): the output of the last block, as Grad-CAM's
    authors use for ResNets (``layer4``), found by running ``example`` once. The last convolution alone can
    be a residual shortcut's 1x1 projection, whose maps are often empty."""
    seen: list[tuple[str, nn.Module]] = []

    def hook(name: str, module: nn.Module) -> Any:
        def record(_m: nn.Module, _inp: Any, out: Any) -> None:
            if isinstance(out, torch.Tensor) and out.ndim == 4 and min(out.shape[-2:]) >= 2 and name:
                seen.append((name, module))
        return record

    handles = [m.register_forward_hook(hook(n, m)) for n, m in model.named_modules()]
    try:
        with torch.no_grad():
            model(example[:1])
    finally:
        for h in handles:
            h.remove()
    if not seen:
        return None
    name, module = seen[-1]
    return module, None, f"{name} (last feature map)"


def gradcam(model: nn.Module, x: np.ndarray, single_logit: bool) -> dict[str, Any]:
    """Heatmaps (N, H, W) in [0, 1] for inputs ``x`` (N, C, H, W) and the classes they explain."""
    try:
        from pytorch_grad_cam import GradCAM
    except ImportError:
        raise BakeoffError("Grad-CAM needs pytorch-grad-cam: pip install 'bakeoff[gradcam]'") from None
    model.eval()
    device = next(model.parameters()).device
    xt = torch.from_numpy(np.ascontiguousarray(x)).float().to(device)
    layer, reshape, where = target_layer(model, tuple(x.shape[-2:]), xt)
    with torch.no_grad():
        logits = model(xt)
    if single_logit:
        classes = (logits.reshape(len(xt), -1)[:, 0] > 0).long().cpu().numpy()
        targets = [(lambda out, c=int(c): out.reshape(-1)[0] * (1 if c == 1 else -1)) for c in classes]
    else:
        classes = logits.argmax(1).cpu().numpy()
        targets = [(lambda out, c=int(c): out[c]) for c in classes]
    with torch.enable_grad(), GradCAM(model=model, target_layers=[layer], reshape_transform=reshape) as cam:
        heat = cam(input_tensor=xt, targets=targets)
    return {"heatmaps": np.asarray(heat, np.float32), "classes": classes, "layer": where}
