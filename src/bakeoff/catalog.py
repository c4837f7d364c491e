"""The names of bakeoff's built-in networks and losses, readable without importing torch.

``bakeoff check`` and ``bakeoff run`` name a typo in a model or loss (with the close match) within about a
second, before torch, the data or any network is loaded (``bakeoff.tasks.names``). The registries that
build them (``bakeoff.models.builtin``, ``bakeoff.models.seg_models``, ``bakeoff.losses``) are the truth;
``tests/test_config.py`` keeps these lists equal to them.
"""

from __future__ import annotations

import difflib

BUILTIN_MODELS = ("simple_cnn3d", "se_resnet", "resnet_seg", "vit_v_net")

# loss name -> the kinds of task it fits (bakeoff.losses.register_loss)
BUILTIN_LOSSES: dict[str, tuple[str, ...]] = {
    "bce": ("binary",), "ce": ("multiclass", "dense"), "cumulative_link": ("multiclass",), "focal": ("dense",),
    "dice": ("dense",), "dice_ce": ("dense",), "focal_dice": ("dense",), "tversky": ("dense",),
    "balanced_softmax_tversky": ("dense",),
}

# the kinds of task in words, for messages
KIND_WORDS = {"binary": "binary classification (one logit)", "multiclass": "multi-class / ordinal classification",
              "dense": "segmentation and particle picking"}


def did_you_mean(name: str, candidates: list[str], prefix: str = "") -> str:
    """' (did you mean 'a', 'b'?)' for up to three close matches of ``name`` (each with ``prefix``), else ''."""
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(repr(prefix + c) for c in close)}?)" if close else ""
