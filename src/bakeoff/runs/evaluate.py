"""Evaluate checkpoints trained elsewhere on a study's split, with the same outputs as a full run.

Checkpoints are read with ``torch.load(weights_only=True)``: plain state dicts, Lightning ``.ckpt``
files (``state_dict`` with a module prefix such as ``model.``), DDP's ``module.`` prefix and bakeoff's own
trainer files all load; anything that needs arbitrary pickled code is refused.
"""

from __future__ import annotations

import json
import pickle
import time
import traceback
import zipfile
from pathlib import Path
from typing import Any

import torch

from bakeoff.errors import BakeoffError
from bakeoff.models import count_parameters
from bakeoff.runs.context import StudyContext
from bakeoff.runs.spec import RunSpec, run_hash
from bakeoff.runs.store import DONE, FAILED, StudyStore
from bakeoff.utils import sha256_of

EVALUATED_FILE = "evaluated_checkpoints.json"


def load_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, loaded safely."""
    if not path.is_file():
        raise BakeoffError(f"--checkpoint {path}: file not found; expected NAME=PATH to an existing checkpoint file")
    if path.stat().st_size == 0:
        raise BakeoffError(f"--checkpoint {path}: the file is empty (0 bytes); expected a checkpoint written by "
                           f"torch.save (an interrupted copy leaves an empty file: copy it again)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
        first = next((x for x in lines if "global" in x.lower() or "operand" in x.lower() or "load key" in x.lower()),
                     lines[0] if lines else "")[:160]
        if "global" not in str(exc).lower():  # not a class the file asks to import: bytes torch cannot parse
            raise BakeoffError(f"{path}: cannot read as a PyTorch checkpoint ({first}): the file is damaged or "
                               f"is not a checkpoint; expected a file written by torch.save") from None
        raise BakeoffError(f"{path}: refused: loading it would run arbitrary pickled code ({first}); expected "
                           f"a state dict or a Lightning .ckpt saved with tensors and plain data only") from None
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        first = next((x for x in str(exc).splitlines() if x.strip()), type(exc).__name__)[:160]
        raise BakeoffError(f"{path}: cannot read as a PyTorch checkpoint ({first}); expected a complete file written "
                           f"by torch.save") from None
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BakeoffError(f"{path}: holds no state dict of tensors; expected a state dict or a .ckpt with "
                           f"'state_dict'")
    return state


def _trained_with(path: Path, params: dict[str, Any] | None) -> str:
    """For a checkpoint of a bakeoff run (RUN/checkpoints/best.ckpt beside RUN/run.json): the model
    params it was trained with that differ from the contender's, in words; else a hint."""
    info_path = path.parent.parent / "run.json"
    if params is not None and info_path.is_file():
        try:
            trained = json.loads(info_path.read_text()).get("params") or {}
        except (OSError, ValueError):
            trained = None
        if isinstance(trained, dict):
            diff = [f"{k}: {trained.get(k)!r} in the checkpoint's run, {params.get(k)!r} here"
                    for k in sorted(set(trained) | set(params)) if trained.get(k) != params.get(k)]
            if diff:
                return f"; the model params differ ({'; '.join(diff[:3])}): expected the params it was trained with"
    return ("; the same layers at another size mean other model params (a width such as base_channels or channels): "
            "expected the contender's params as when the checkpoint was trained")


def match_state(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, model_name: str,
                params: dict[str, Any] | None = None) -> None:
    """Load ``state`` into ``model`` after stripping the module prefix the keys share; strict."""
    target = model.state_dict()
    prefixes: dict[str, int] = {}
    for k in state:
        for t in target:
            if k == t or k.endswith("." + t):
                p = k[: len(k) - len(t)]
                prefixes[p] = prefixes.get(p, 0) + 1
    prefix = max(prefixes, key=lambda p: (prefixes[p], -len(p))) if prefixes else ""
    stripped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing = [k for k in target if k not in stripped]
    unexpected = [k for k in stripped if k not in target]
    shapes = [f"{k} {tuple(stripped[k].shape)} vs {tuple(v.shape)}" for k, v in target.items()
              if k in stripped and stripped[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first: {missing[:3]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first: {unexpected[:3]})")
        if shapes:
            parts.append(f"{len(shapes)} of another shape (first: {shapes[:2]})")
        raise BakeoffError(f"{path}: keys do not match {model_name}" + (f" after removing prefix {prefix!r}" if prefix
                           else "") + ": " + "; ".join(parts)
                           + (_trained_with(path, params) if shapes and not missing and not unexpected else ""))
    model.load_state_dict(stripped, strict=True)


def parse_checkpoints(items: list[str], contenders: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise BakeoffError(f"--checkpoint {item!r}: expected NAME=PATH with NAME a contender of the study")
        if name not in contenders:
            raise BakeoffError(f"--checkpoint {item!r}: {name!r} is not a contender; expected one of {contenders}")
        out[name] = Path(path).expanduser()
    if not out:
        raise BakeoffError("--checkpoint: expected at least one NAME=PATH")
    return out


def evaluate_checkpoint(ctx: StudyContext, store: StudyStore, name: str, path: Path, fold: int) -> dict[str, Any]:
    """One 'run' whose model comes from a file: predictions, metrics, timing, as ``execute_run`` leaves."""
    from bakeoff.runs.runner import predict_and_save, versions

    cfg, data = ctx.config, ctx.data
    protocol = ctx.protocol(name)
    contender = cfg.contenders[name]
    split = ctx.splits[fold]
    sha = sha256_of(path)
    seed = protocol.seeds[0]
    run = RunSpec(name, seed, fold, run_hash(data=data.fingerprint(), split=split.fingerprints(data.ids),
                                             contender=contender.identity(), checkpoint=sha),
                  protocol.model_dump(mode="json"))
    info: dict[str, Any] = {
        "contender": name, "seed": seed, "fold": fold, "run_id": run.run_id, "hash": run.hash,
        "source": "checkpoint", "checkpoint": str(path.resolve()), "checkpoint_sha256": sha,
        "model": contender.model, "params": contender.params, "protocol": protocol.model_dump(mode="json"),
        "split": split.fingerprints(data.ids), "versions": versions(),
        "class_counts": {p: ctx.class_counts(split.indices(p)) for p in ("train", "val", "test")},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    state = load_state(path)  # refused files end the command before anything is written
    input_shape = ctx.input_shape(name, fold)
    model = ctx.build_model(name, fold=fold)
    match_state(model, state, path, contender.model, contender.params)
    if store.is_done(run):
        return store.run_info(run)
    run_dir = store.start(run)
    t0 = time.perf_counter()
    try:
        module = ctx.strategy.module_for(ctx.task, model, protocol, input_shape, cfg.evaluation.threshold)
        info["n_parameters"] = count_parameters(model)
        info["speed"] = predict_and_save(ctx, run, module, run_dir, input_shape)
        info.update(status=DONE, device=str(module.device))
    except Exception as exc:  # noqa: BLE001 - recorded like a failed training run
        info.update(status=FAILED, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
    info["wall_time_s"] = time.perf_counter() - t0
    info["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    store.write_run(run, info)
    return info
