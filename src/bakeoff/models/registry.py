"""A registry with a decorator, a factory and a lister, in the manner of timm's ``_registry``.

``create_model(name, data_kwargs, params)`` builds any provider's network with the same contract: the
data decide ``in_channels``, the number of outputs, ``spatial_dims`` and ``input_shape``; ``params``
come from the contender. Unknown parameters are errors that list the valid ones.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib
import inspect
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from bakeoff.catalog import did_you_mean
from bakeoff.components import call_checked
from bakeoff.errors import BakeoffError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
PROVIDERS = ("bakeoff", "monai", "timm")


@dataclass(frozen=True)
class ModelInfo:
    """What a registered network declares: the dimensionalities it builds in, whether it outputs per pixel
    (segmentation) or per sample, and the smallest parameters for the common checks (tests)."""

    dims: tuple[int, ...] = (2, 3)
    dense: bool = False
    small: dict[str, Any] | None = None


MODEL_INFO: dict[str, ModelInfo] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None,
                   dims: tuple[int, ...] = (2, 3), dense: bool = False, small: dict[str, Any] | None = None):
    """Decorator: register a built-in network factory under ``bakeoff:<name>``, declaring the
    dimensionalities it builds in (``dims``) and whether its outputs are per pixel (``dense``)."""

    def deco(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key] is not f:
            warnings.warn(f"model {key!r} registered twice; the later definition wins", stacklevel=2)
        _REGISTRY[key] = f
        MODEL_INFO[key] = ModelInfo(tuple(dims), dense, small)
        return f

    return deco(fn) if fn is not None else deco


def _first_line(doc: str | None) -> str:
    """A docstring's first sentence (its first paragraph when that has no full stop), on one line."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    head, dot, _ = para.partition(". ")
    return (head + "." if dot else para)[:160]


def model_doc(name: str) -> str:
    """One line about a model: a built-in's docstring, MONAI's class docstring, timm's entry point's."""
    provider, sep, short = name.partition(":")
    if not sep:
        provider, short = "bakeoff", name
    try:
        if provider == "bakeoff":
            return _first_line(getattr(_REGISTRY.get(short), "__doc__", None))
        if provider == "monai":
            cls = getattr(_import("monai.networks.nets", "monai"), short)
            return _first_line(cls.__doc__) or _first_line(cls.__init__.__doc__)
        if provider == "timm":
            from timm.models import model_entrypoint

            return _first_line(model_entrypoint(short).__doc__)
    except (AttributeError, RuntimeError, BakeoffError, ImportError):  # not there: no description
        return ""
    return ""


def installed_providers() -> list[str]:
    """The providers whose package is installed (bakeoff always)."""
    import importlib.util

    return ["bakeoff"] + [p for p in ("monai", "timm") if importlib.util.find_spec(p) is not None]


def list_models(pattern: str = "*", provider: str = "bakeoff") -> list[str]:
    """Names matching a shell-style pattern, case-insensitively, e.g. ``list_models("*unet*", "all")``;
    ``provider``: bakeoff, monai, timm, or "all" (every installed provider)."""
    if provider == "all":
        return [n for p in installed_providers() for n in list_models(pattern, p)]
    if provider == "bakeoff":
        names = [f"bakeoff:{k}" for k in _REGISTRY]
    elif provider == "monai":
        names = [f"monai:{k}" for k in _monai_names()]
    elif provider == "timm":
        import timm

        names = [f"timm:{k}" for k in timm.list_models()]
    else:
        raise BakeoffError(f"unknown provider {provider!r}; expected one of {PROVIDERS} or 'all'")
    pat = pattern.lower()
    return sorted(n for n in names if fnmatch.fnmatchcase(n.lower(), pat)
                  or fnmatch.fnmatchcase(n.split(":", 1)[1].lower(), pat))


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def resolve(model: str) -> ModelSpec:
    """Parse a model string; a bare name means a built-in. Unknown names suggest close matches."""
    provider, sep, name = model.partition(":")
    if not sep:
        provider, name = "bakeoff", model
    if provider == "bakeoff":
        if name not in _REGISTRY:
            raise BakeoffError(f"unknown model {model!r}{did_you_mean(name, list(_REGISTRY), 'bakeoff:')}; "
                               f"expected a registered model: `bakeoff list models` lists them")
    elif provider == "monai":
        names = _monai_names()
        if name not in names:
            raise BakeoffError(f"unknown MONAI network {model!r}{did_you_mean(name, names, 'monai:')}")
    elif provider == "timm":
        timm = _import("timm", "timm")
        if not timm.is_model(name):
            raise BakeoffError(f"unknown timm model {model!r}{did_you_mean(name, timm.list_models(), 'timm:')}")
    else:
        provider = model.rsplit(":", 1)[0]
        name = model.rsplit(":", 1)[1]
        if not name:
            raise BakeoffError(f"model {model!r}: expected 'bakeoff:NAME', 'monai:NAME', 'timm:NAME' or "
                               f"'package.module:callable'")
    return ModelSpec(provider, name)


def _import(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BakeoffError(f"{module} is not installed; install it with: pip install 'bakeoff[{extra}]'") from None


def _monai_names() -> list[str]:
    """MONAI's networks, each once: by its class name where MONAI exports it so (aliases such as
    ``BasicUnet`` and ``Basicunet`` for ``BasicUNet`` still resolve, they are just not listed)."""
    nets = _import("monai.networks.nets", "monai")
    found = {k: v for k, v in vars(nets).items() if isinstance(v, type) and issubclass(v, nn.Module)}
    return [k for k, v in found.items() if k == v.__name__ or v.__name__ not in found]


def create_model(model: str, *, in_channels: int, num_outputs: int, spatial_dims: int,
                 input_shape: tuple[int, ...], params: dict[str, Any] | None = None) -> nn.Module:
    """Build any registered or provider model with outputs ``(N, num_outputs)`` (or per-pixel maps)."""
    spec = resolve(model)
    params = dict(params or {})
    if spec.provider == "bakeoff":
        data_kwargs = dict(in_channels=in_channels, num_outputs=num_outputs, spatial_dims=spatial_dims,
                           input_shape=tuple(input_shape))
        return call_checked(_REGISTRY[spec.name], data_kwargs, params, f"model {spec}")
    if spec.provider == "monai":
        nets = _import("monai.networks.nets", "monai")
        cls = getattr(nets, spec.name)
        data_kwargs = dict(spatial_dims=spatial_dims, in_channels=in_channels, out_channels=num_outputs,
                           num_classes=num_outputs, img_size=tuple(input_shape))
        _check_patches(spec, cls, params, tuple(input_shape))
        net = call_checked(cls, data_kwargs, params, f"model {spec}")
        if "classification" in inspect.signature(cls).parameters:  # ViT and kin: (output, hidden states)
            net = FirstOutput(net)
        return net
    if spec.provider == "timm":
        if spatial_dims != 2:
            raise BakeoffError(f"model {spec}: timm models are 2D; the data are {spatial_dims}D: expected a 3D model "
                               f"(bakeoff:NAME or monai:NAME with spatial_dims 3)")
        net = _timm_model(spec, in_channels, num_outputs, params)
        _check_timm_patches(spec, net, tuple(input_shape))
        return net
    from bakeoff.components import import_user_module

    module = import_user_module(spec.provider, f"model {model!r}")
    fn = getattr(module, spec.name, None)
    if not callable(fn):
        raise BakeoffError(f"model {model!r}: {spec.provider} has no callable {spec.name!r}; expected a function or "
                           f"class defined in {spec.provider}")
    data_kwargs = dict(in_channels=in_channels, num_outputs=num_outputs, spatial_dims=spatial_dims,
                       input_shape=tuple(input_shape))
    net = call_checked(fn, data_kwargs, params, f"model {model}")
    if not isinstance(net, nn.Module):
        raise BakeoffError(f"model {model!r}: returned {type(net).__name__}; expected a torch.nn.Module")
    return net


class FirstOutput(nn.Module):
    """A network that returns ``(output, extras...)`` (MONAI's ViT: logits and hidden states), seen as one
    that returns its output. The wrapped network's state-dict keys gain the prefix ``net.``."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return out[0] if isinstance(out, (tuple, list)) else out


def _check_patches(spec: ModelSpec, cls: Any, params: dict[str, Any], shape: tuple[int, ...]) -> None:
    """A transformer's patches must tile the image: MONAI's convolutional patch embedding would otherwise drop
    the border pixels that do not fill a patch, without a word."""
    if "patch_size" not in params or "img_size" not in inspect.signature(cls).parameters:
        return
    patch = params["patch_size"]
    patch = tuple(patch) if isinstance(patch, (list, tuple)) else (patch,) * len(shape)
    if len(patch) != len(shape) or not all(isinstance(p, int) and p > 0 for p in patch):
        raise BakeoffError(f"model {spec}: patch_size {params['patch_size']!r}; expected a positive integer or "
                           f"{len(shape)} of them, one per image side {shape}")
    if any(s % p for s, p in zip(shape, patch)):
        fits = [[d for d in range(1, s + 1) if s % d == 0] for s in shape]
        raise BakeoffError(f"model {spec}: patch_size {params['patch_size']!r} does not divide the image size "
                           f"{shape}: the border pixels that fill no patch would be dropped silently; expected "
                           f"per side a divisor (side {shape[0]}: {fits[0][:6]}...), or images resized to "
                           f"a multiple of the patch")


def _check_timm_patches(spec: ModelSpec, net: nn.Module, shape: tuple[int, ...]) -> None:
    """A timm transformer's patch embedding (``patch_embed.patch_size``) must tile the images: a strided
    convolution drops the border pixels that fill no patch, without a word."""
    patch = getattr(getattr(net, "patch_embed", None), "patch_size", None)
    if patch is None:
        return
    patch = tuple(int(p) for p in (patch if isinstance(patch, (list, tuple)) else (patch,) * len(shape)))
    if len(patch) == len(shape) and any(s % p for s, p in zip(shape, patch)):
        near = [max(p, s // p * p) for s, p in zip(shape, patch)]
        raise BakeoffError(f"model {spec}: its patch size {patch} does not divide the image size {shape}: the "
                           f"border pixels that fill no patch would be dropped silently; expected images whose "
                           f"sides are multiples of the patch (data.image_size: {near if len(set(near)) > 1 else near[0]}"
                           f" and params.img_size to match), or a model with a smaller patch")


@contextlib.contextmanager
def _hub_offline(on: bool) -> Iterator[None]:
    """The Hugging Face hub offline while timm looks for pretrained weights (a missing file is an error at
    once, never a download or a hang); the process's own setting back afterwards."""
    if not on:
        yield
        return
    try:
        import huggingface_hub.constants as hub_constants
    except ImportError:
        hub_constants = None
    env, flag = os.environ.get("HF_HUB_OFFLINE"), getattr(hub_constants, "HF_HUB_OFFLINE", None)
    os.environ["HF_HUB_OFFLINE"] = "1"
    if hub_constants is not None:
        hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = flag


def _timm_model(spec: ModelSpec, in_channels: int, num_outputs: int, params: dict[str, Any]) -> nn.Module:
    """``timm.create_model`` with ``pretrained=False`` by default. ``pretrained: true`` reads weights only
    from the local Hugging Face cache or from ``pretrained_file`` (a local .safetensors/.pth): the hub is
    switched to offline mode first, so a missing file is an immediate error, never a download or a hang."""

    params = dict(params)
    weights_file = params.pop("pretrained_file", None)
    pretrained = bool(params.pop("pretrained", False)) or weights_file is not None
    timm = _import("timm", "timm")
    kwargs: dict[str, Any] = dict(pretrained=pretrained, in_chans=in_channels, num_classes=num_outputs)
    if weights_file is not None:
        path = Path(str(weights_file)).expanduser()
        if not path.is_file():
            raise BakeoffError(f"model {spec}: pretrained_file {path} not found; expected a local weights file")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
    kwargs.update(params)
    try:
        with _hub_offline(pretrained):
            return timm.create_model(spec.name, **kwargs)
    except Exception as exc:  # noqa: BLE001 - timm raises many kinds; each is one user-facing problem
        if pretrained:
            raise BakeoffError(
                f"model {spec}: pretrained weights are not in the local cache and no pretrained_file was given "
                f"({type(exc).__name__}); bakeoff never downloads: put the weights in the Hugging Face cache or "
                f"set params.pretrained_file: /path/to/weights.safetensors") from None
        raise BakeoffError(f"model {spec}: {type(exc).__name__}: {exc}") from None


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
