"""What every kind of component (model, loss) shares: a user's own ``package.module:callable`` imported
with a clear error, and a factory called with the keywords it accepts, its parameters checked against its
signature (unknown ones with their close matches)."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from bakeoff.errors import BakeoffError


def import_user_module(name: str, what: str) -> Any:
    """The user's own module of a ``package.module:callable``: a missing one is the user's to install or
    to put on the path, not an extra of bakeoff's."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BakeoffError(f"{what}: cannot import module {name!r} ({type(exc).__name__}: {exc}); expected an "
                           f"importable module: install the package that provides it, or run bakeoff from the "
                           f"folder that holds {name.split('.')[0]}/ (or add that folder to PYTHONPATH)") from None
    except Exception as exc:  # noqa: BLE001 - the user's module failed while importing
        raise BakeoffError(f"{what}: importing module {name!r} raised {type(exc).__name__}: {exc}; expected it to "
                           f"import cleanly: fix the error in that module") from None


def import_callable(ref: str, where: str) -> Callable[..., Any]:
    """``package.module:callable`` → the callable, or a one-line error naming what is missing."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise BakeoffError(f"{where}: {ref!r} is not of the form package.module:callable")
    module = import_user_module(module_name, where)
    fn = getattr(module, attr, None)
    if not callable(fn):
        names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
        close = difflib.get_close_matches(attr, names, n=1)
        raise BakeoffError(f"{where}: {module_name} has no callable {attr!r}"
                           + (f" (did you mean {close[0]!r}?)" if close else "")
                           + f"; expected a function or class defined in {module_name}")
    return fn


_SIMPLE = {int: (int,), float: (int, float), bool: (bool,), str: (str,)}


def check_param_types(fn: Callable[..., Any], params: dict[str, Any], label: str) -> None:
    """A parameter whose annotation is a plain int / float / bool / str (or a sequence of them) must get
    one: a YAML string where a number is expected fails here, naming the parameter, not deep inside the
    network's constructor ("not all arguments converted during string formatting")."""
    import collections.abc
    import types
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: nothing to check against
        return
    for name, value in params.items():
        ann = hints.get(name)
        if ann is None or value is None:
            continue
        options = [a for a in typing.get_args(ann) if a is not type(None)] if typing.get_origin(ann) in (
            typing.Union, types.UnionType) else [ann]
        ok, expected = False, []
        for opt in options:
            origin = typing.get_origin(opt) or opt
            if opt in _SIMPLE:
                expected.append(opt.__name__)
                ok |= isinstance(value, _SIMPLE[opt]) and not (opt is not bool and isinstance(value, bool))
            elif origin in (list, tuple, typing.Sequence, collections.abc.Sequence):
                inner = [a for a in typing.get_args(opt) if a is not Ellipsis]
                expected.append(f"a list of {inner[0].__name__}" if inner and inner[0] in _SIMPLE else "a list")
                ok |= isinstance(value, (list, tuple)) and (not inner or inner[0] not in _SIMPLE
                                                            or all(isinstance(v, _SIMPLE[inner[0]]) for v in value))
            else:
                ok = True  # an annotation this check does not model: leave it to the component
        if not ok:
            raise BakeoffError(f"{label}: parameter {name!r} is {value!r} ({type(value).__name__}); expected "
                               f"{' or '.join(dict.fromkeys(expected))}")


def call_checked(fn: Callable[..., Any], data_kwargs: dict[str, Any], params: dict[str, Any], label: str,
                 signature_of: Callable[..., Any] | None = None) -> Any:
    """Call ``fn`` with the data-derived keywords it accepts plus ``params``; reject unknown params (with
    close matches). ``signature_of``: whose signature decides (when ``fn`` is a wrapper)."""
    sig = inspect.signature(signature_of or fn)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    valid = [k for k, p in sig.parameters.items()
             if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and (signature_of is None or p.kind is p.KEYWORD_ONLY)]
    unknown = [k for k in params if k not in valid]
    if unknown and not accepts_any:
        close = {k: difflib.get_close_matches(k, valid, n=1) for k in unknown}
        hint = "; ".join(f"{k!r}: did you mean {c[0]!r}?" for k, c in close.items() if c)
        raise BakeoffError(f"{label}: unknown parameter(s) {unknown}" + (f" ({hint})" if hint else "")
                           + f"; expected one of {valid}")
    check_param_types(signature_of or fn, params, label)
    kwargs = {k: v for k, v in data_kwargs.items() if k in valid and k not in params}
    kwargs.update({k: v for k, v in params.items() if v is not None})  # None means "the component's default"
    try:
        return fn(**kwargs)
    except BakeoffError:
        raise
    except Exception as exc:  # noqa: BLE001 - the component's own complaint, in one line
        raise BakeoffError(f"{label}: {type(exc).__name__}: {' '.join(str(exc).split())}; expected settings it "
                           f"can be built with: fix its params (or the data) as the message says") from None
