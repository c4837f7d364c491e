"""Take the winner home: one run's selected weights as a file other code loads without bakeoff's study
directory (``bakeoff export DIR``), with a model card (JSON and Markdown) that says what it is, how it was
trained and judged, and how to load it.

Formats: ``safetensors`` (the weights; the card gives the one call that rebuilds the network),
``torch_export`` (``torch.export``: the network and weights as one ``.pt2`` program, PyTorch's successor to
TorchScript, batch size dynamic), ``onnx`` (``torch.onnx.export`` through torch.export, batch size dynamic;
needs the ``onnx`` extra: onnx, onnxscript, and onnxruntime to run it) and ``torchscript`` (traced on an
input of the data's shape; PyTorch now deprecates it, kept for code that still loads it).

Which run: the contender (default: the one ranked first on the primary metric), and among its runs the
one with the best validation score (the selection rule the runs used; never the test score, which would
choose on the test set); ``--seed``/``--fold`` pick another.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from bakeoff.errors import BakeoffError
from bakeoff.runs.store import CHECKPOINTS_DIR, DATA_CHECKS_FILE, DONE, StudyStore
from bakeoff.utils import atomic_path, nearest_existing, read_json

FORMATS = ("safetensors", "torchscript", "torch_export", "onnx")


def choose_run(store: StudyStore, comparison: dict[str, Any], contender: str | None, seed: int | None,
               fold: int | None) -> dict[str, Any]:
    """The run.json of the run to export (see the module docstring for the rule)."""
    study = store.saved_study()
    infos = [i for i in store.all_run_infos() if i.get("status") == DONE]
    if not infos:  # nothing to choose from: say so, whichever contender was asked for
        failed = sum(i.get("status") == "failed" for i in store.all_run_infos())
        raise BakeoffError(f"{store.root}: no finished run to export ({failed} failed; bakeoff status says why); "
                           f"expected a study with at least one finished run: fix what failed and run it again")
    if contender is None:
        rank = (comparison.get("rank_stability") or {}).get("rank") or {}
        ranked = sorted((r, c) for c, r in rank.items() if any(i["contender"] == c for i in infos))
        contender = ranked[0][1] if ranked else (infos[0]["contender"] if infos else None)
    if contender not in study.contenders:
        raise BakeoffError(f"--contender {contender!r}: not a contender of {study.name}; expected one of "
                           f"{list(study.contenders)}")
    runs = [i for i in infos if i["contender"] == contender and (seed is None or i["seed"] == seed)
            and (fold is None or i["fold"] == fold)]
    if not runs:
        raise BakeoffError(f"{store.root}: no finished run of {contender}" + (f" with seed {seed}" if seed is not None
                           else "") + (f" in fold {fold}" if fold is not None else "")
                           + "; expected a finished run (bakeoff status shows them)")
    sign = -1.0 if study.protocol_for(contender).select.mode == "min" else 1.0

    def merit(i: dict[str, Any]) -> tuple[float, int, int]:
        score = i.get("best_score")
        return (sign * float(score) if isinstance(score, int | float) else float("-inf"), -i["seed"], -i["fold"])

    return max(runs, key=merit)


def export_run(out_dir: str | Path, path: str | Path, fmt: str = "safetensors", contender: str | None = None,
               seed: int | None = None, fold: int | None = None) -> dict[str, Any]:
    """Write the chosen run's network to ``path`` in ``fmt`` and its model card beside it
    (``PATH.card.json``, ``PATH.card.md``); returns the card."""
    import torch

    from bakeoff.runs.context import StudyContext
    from bakeoff.runs.evaluate import load_state, match_state

    if fmt not in FORMATS:
        raise BakeoffError(f"--format {fmt!r}: expected one of {list(FORMATS)}")
    if fmt == "onnx":  # before any work: the exporter's packages are an extra
        import importlib.util

        missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if missing:
            raise BakeoffError(f"--format onnx: needs the packages {missing}, which are not installed; expected "
                               f"pip install 'bakeoff[onnx]' (or choose --format safetensors or torch_export)")
    store = StudyStore(out_dir)
    study = store.saved_study()
    comparison_path = store.root / "comparison.json"
    comparison = read_json(comparison_path) if comparison_path.is_file() else {}
    info = choose_run(store, comparison, contender, seed, fold)
    name = info["contender"]
    ckpt = store.run_path(name, info["run_id"]) / CHECKPOINTS_DIR / "best.ckpt"
    if not ckpt.is_file():
        raise BakeoffError(f"{ckpt}: not found; expected the run's selected weights (bakeoff clean keeps them)")
    path = Path(path)
    cards = [Path(f"{path}.card.json"), Path(f"{path}.card.md")]
    for p in (path, *cards):  # the model and its cards: all new, or nothing is written
        if p.exists():
            raise BakeoffError(f"--out {path}: {p} exists; expected a new file name (nothing is overwritten)")
    folder = nearest_existing(path.parent)
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise BakeoffError(f"--out {path}: {folder} is not a folder this user can write to; expected a writable "
                           f"destination (check its permissions, or choose another --out)")
    ctx = StudyContext(study)
    protocol = ctx.protocol(name)
    net = ctx.build_model(name, fold=int(info["fold"]))
    match_state(net, load_state(ckpt), ckpt, study.contenders[name].model, study.contenders[name].params)
    net.eval()
    shape = (1, ctx.data.in_channels, *ctx.input_shape(name, int(info["fold"])))
    try:
        with atomic_path(path, replace=False) as tmp:  # whole or not at all, never over a file made meanwhile
            if fmt == "safetensors":
                from safetensors.torch import save_file

                save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(tmp))
            elif fmt == "torch_export":
                example = torch.zeros((2, *shape[1:]))  # two samples: the batch dimension stays dynamic
                program = torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
                torch.export.save(program, str(tmp))
            elif fmt == "onnx":
                example = torch.zeros((2, *shape[1:]))
                with _quiet_onnx():
                    torch.onnx.export(net, (example,), str(tmp), dynamo=True, input_names=["input"], output_names=["output"],
                                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False,
                                      external_data=False)  # one file (weights inside; fine below 2 GB)
            else:
                with torch.no_grad():
                    traced = torch.jit.trace(net, torch.zeros(shape), check_trace=False)
                traced.save(str(tmp))
    except FileExistsError:
        raise BakeoffError(f"--out {path}: exists; expected a new file name (nothing is overwritten)") from None
    card = model_card(store, ctx, info, comparison, fmt, path, shape, protocol)
    for p, text in zip(cards, (json.dumps(card, indent=2, default=str), card_markdown(card))):
        try:
            with atomic_path(p, replace=False) as tmp:  # never over a card made meanwhile
                tmp.write_text(text)
        except FileExistsError:
            raise BakeoffError(f"--out {path}: {p} appeared while exporting and was left as it was; the model "
                               f"{path} was written: move {p} aside and export again to a new name") from None
    return card


def _quiet_onnx() -> Any:
    """torch.onnx's exporter prints a progress line per stage to stdout; the command says what it wrote."""
    import contextlib
    import io

    return contextlib.redirect_stdout(io.StringIO())


def model_card(store: StudyStore, ctx: Any, info: dict[str, Any], comparison: dict[str, Any], fmt: str,
               path: Path, shape: tuple[int, ...], protocol: Any) -> dict[str, Any]:
    """What the exported file is, how it was trained and judged, and the code that loads it."""
    study = ctx.config
    name = info["contender"]
    c = study.contenders[name]
    checks = read_json(store.root / DATA_CHECKS_FILE) if (store.root / DATA_CHECKS_FILE).is_file() else {}
    own = comparison.get("contenders", {}).get(name) or {}
    pairs = [p for p in comparison.get("pairs", []) if name in (p["a"], p["b"])]
    won = [p["verdict"] for p in pairs if p["verdict"].startswith(f"{name} better")]
    lost = [p["verdict"] for p in pairs if "better" in p["verdict"] and not p["verdict"].startswith(f"{name} better")]
    task = ctx.task
    outputs = 1 if protocol.loss.name == "cumulative_link" else task.num_outputs
    output = task.output_text
    if fmt == "torchscript":
        load = f"import torch\n\nmodel = torch.jit.load({path.name!r})\nmodel.eval()"
    elif fmt == "torch_export":
        load = f"import torch\n\nmodel = torch.export.load({path.name!r}).module()"
    elif fmt == "onnx":
        load = (f"import onnxruntime\n\nsession = onnxruntime.InferenceSession({path.name!r})\n"
                f"# x: float32 array of shape (batch, *{list(shape[1:])})\n"
                f"output = session.run(None, {{'input': x}})[0]")
    else:
        load = (f"from safetensors.torch import load_file\nfrom bakeoff.models import create_model\n\n"
                f"model = create_model({c.model!r}, in_channels={shape[1]}, num_outputs={outputs}, "
                f"spatial_dims={len(shape) - 2}, input_shape={tuple(shape[2:])}, params={dict(c.params)!r})\n"
                f"model.load_state_dict(load_file({path.name!r}))\nmodel.eval()")
    return {
        "file": path.name, "format": fmt, "study": study.name, "task": study.task,
        "contender": name, "model": c.model, "params": dict(c.params), "n_parameters": info.get("n_parameters"),
        "run": {"seed": info["seed"], "fold": info["fold"], "run_id": info["run_id"],
                "chosen_by": f"best validation {protocol.select.monitor} among the contender's finished runs "
                             f"({_fmt_score(info.get('best_score'))}); never the test score",
                "best_epoch": info.get("best_epoch"), "epochs_trained": info.get("epochs_trained")},
        "input": {"shape": list(shape), "dtype": "float32", "normalize": study.data.normalize},
        "output": output, "class_names": checks.get("class_names"),
        "data": {"source": study.data.source, "fingerprint": checks.get("data_fingerprint"),
                 "split_sizes": info.get("split_sizes")},
        "protocol": info.get("protocol"),
        "test": {"primary": comparison.get("primary"), "contender_mean": own.get("mean"),
                 "interval": [own.get("ci_low"), own.get("ci_high")], "interval_method": own.get("interval_method")},
        "verdicts_won": won, "verdicts_lost": lost, "versions": info.get("versions"), "load": load,
    }


def card_markdown(card: dict[str, Any]) -> str:
    t = card["test"]
    lines = [f"# {card['contender']} ({card['model']}) from the bake-off {card['study']}", "",
             f"- task: {card['task']}; parameters: {card['n_parameters']:,}" if card.get("n_parameters") else
             f"- task: {card['task']}",
             f"- network parameters: `{json.dumps(card['params'])}`",
             f"- run: seed {card['run']['seed']}, fold {card['run']['fold']}; {card['run']['chosen_by']}",
             f"- input: {card['input']['shape']} float32, normalised ({card['input']['normalize']}) as in the study",
             f"- output: {card['output']}",
             f"- data: {card['data']['source']} (fingerprint {card['data']['fingerprint']})",
             f"- test {t['primary']}: the contender's mean over runs {t['contender_mean']}, interval {t['interval']}",
             "- verdicts it won: " + ("; ".join(card["verdicts_won"]) or "none"),
             "- verdicts it lost: " + ("; ".join(card["verdicts_lost"]) or "none"), "",
             f"## Loading ({card['format']})", "", "```python", card["load"], "```", ""]
    return "\n".join(lines)


def _fmt_score(x: Any) -> str:
    return f"{x:.4f}" if isinstance(x, float) else str(x)
