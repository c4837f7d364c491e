"""The data sources' registry: ``data.source: NAME[:ARGUMENT]`` for sample tasks and dense ones, and the
user's own loaders (``package.module:callable``). Built-in sources register themselves in their modules
(``data.sources``: samples; ``data.segdata``: images with masks), which ``load_sources`` loads by name, as
a plugin registry loads its entry points: the loaders import this registry, never the other way round."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bakeoff.data.arrays import ArrayData, from_arrays
from bakeoff.errors import BakeoffError

# the modules whose built-in sources register when they load, for sample tasks (False) and dense ones (True)
BUILT_IN: dict[bool, str] = {False: "bakeoff.data.sources", True: "bakeoff.data.segdata"}
# the dense registrations run once, when first asked (their generators' module is imported then)
REGISTRARS: dict[bool, list[Callable[[], None]]] = {False: [], True: []}
# how a user's ``package.module:callable`` becomes a loader, for each kind (dense: set by data.segdata)
USER_LOADERS: dict[bool, Callable[[Callable[..., Any]], Callable[..., Any]]] = {}


def load_sources(dense: bool | None = None) -> dict[tuple[str, bool], SourceSpec]:
    """Every built-in source of a kind (``dense``; None: both) registered: its module loaded by name and its
    registrations run. Returns the registry."""
    for kind in (False, True) if dense is None else (dense,):
        importlib.import_module(BUILT_IN[kind])
        for register in REGISTRARS[kind]:
            register()
    return SOURCES


def call_builtin(fn: Callable[..., dict[str, Any]], source: str, params: dict[str, Any],
                 needs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Call a data generator (built in, or the user's ``package.module:callable``) with the study's
    ``data.params``, naming unknown or bad ones; the dict it returns must hold the arrays ``needs``."""
    from bakeoff.components import call_checked

    out = call_checked(fn, {}, params, f"data.params ({source})")
    if not isinstance(out, dict) or any(k not in out for k in needs):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise BakeoffError(f"data.source {source}: returned {got}; expected a dict with arrays {list(needs)}")
    return out


@dataclass(frozen=True)
class SourceSpec:
    """A registered data source: ``data.source: NAME[:ARGUMENT]``, for sample tasks or dense ones."""

    name: str  # "npz", "csv", ... or "builtin:spots3d"
    dense: bool
    loader: Callable[..., Any]
    doc: str
    instances: bool = False  # its masks are instance labels (one id per object), for instance_segmentation


SOURCES: dict[tuple[str, bool], SourceSpec] = {}


def register_source(name: str, *, dense: bool, doc: str, instances: bool = False
                    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``loader(argument, params, **data_settings)`` reads ``data.source: NAME:ARGUMENT``;
    ``instances``: its masks are instance labels (only an instance_segmentation study reads them)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        SOURCES[(name, dense)] = SourceSpec(name, dense, fn, doc, instances)
        return fn

    return wrap


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    para = " ".join((doc or "").strip().split("\n\n")[0].split())
    return para.split(". ")[0].rstrip(".")


def find_source(source: str, dense: bool) -> tuple[SourceSpec, str]:
    """The registered source ``source`` names, and its argument; a clear error listing the others."""
    load_sources(dense)
    kind, _, rest = source.partition(":")
    spec = SOURCES.get((source, dense)) if kind == "builtin" else SOURCES.get((kind, dense))
    if spec is None and kind != "builtin" and not any(n == kind for n, _ in SOURCES):
        # not a registered kind: the user's own loader, package.module:callable
        load_sources()
        if not any(n == kind for n, _ in SOURCES):
            fn = _user_loader(source)
            return SourceSpec(source, dense, USER_LOADERS[dense](fn), "user"), source
    if spec is None:
        names = sorted(n if n.startswith("builtin:") else f"{n}:..." for n, d in SOURCES if d == dense)
        if kind == "builtin":
            raise BakeoffError(f"data.source: unknown built-in {'segmentation ' if dense else ''}data {rest!r}; "
                               f"expected one of {[n for n in names if n.startswith('builtin:')]}")
        load_sources()
        other = any(n == kind or n == source for n, d in SOURCES if d != dense)
        what = ("holds no masks" if dense else "holds images with masks (for semantic_segmentation or "
                "particle_picking)") if other else "is not a data source"
        raise BakeoffError(f"data.source: {source!r} {what}; expected one of {names}")
    return spec, rest


def _user_loader(source: str) -> Callable[..., Any]:
    """The callable ``package.module:callable`` names; a module that does not import may be a mistyped
    source kind, so the message lists the registered ones too."""
    from bakeoff.components import import_callable

    module = source.partition(":")[0]
    try:
        return import_callable(source, "data.source")
    except BakeoffError as exc:
        if importlib.util.find_spec(module.split(".")[0]) is not None:
            raise
        kinds = sorted({n.partition(":")[0] for n, _ in SOURCES})
        close = difflib.get_close_matches(module, kinds, n=1)
        raise BakeoffError(f"data.source: {source!r}: {module!r} is neither a data source"
                           + (f" (did you mean {close[0]!r}?)" if close else "")
                           + f" nor an importable module; expected one of {kinds} (bakeoff list sources) or "
                           f"your own loader as package.module:callable") from exc


def _no_params(source: str, params: dict[str, Any]) -> None:
    if params:
        raise BakeoffError(f"data.params: {source} takes no parameters, got {sorted(params)}")


def generator_loader(fn: Callable[..., dict[str, np.ndarray]]) -> Callable[..., ArrayData]:
    """A source from a generator returning ``{"X", "y"[, "groups", "ids", "folds", "class_names"]}``."""

    def load(rest: str, params: dict[str, Any], *, source: str, spatial_dims: int | None,
             num_classes: int | None, targets: str = "classes", **_: Any) -> ArrayData:
        arrays = call_builtin(fn, source, params, needs=("X", "y"))
        data = from_arrays(arrays["X"], arrays["y"], groups=arrays.get("groups"), ids=arrays.get("ids"),
                           folds=arrays.get("folds"), spatial_dims=spatial_dims, num_classes=num_classes,
                           name=source, targets=targets)
        data.meta = {k: v for k, v in arrays.items() if k not in ("X", "y", "groups", "ids", "folds")}
        return data

    return load


USER_LOADERS[False] = generator_loader
