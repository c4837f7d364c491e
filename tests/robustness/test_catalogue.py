"""A catalogue of bad inputs, each fed to the CLI as a user would (``bakeoff run``, ``check``, ``compare``,
``evaluate``; in this process, for speed): the exit code is 2, the one-line message names the culprit
and what was expected, no traceback is printed, no training starts (no run directory appears), and
every file already in the output directory is byte-identical afterwards. A few cases are inputs that
look odd but are fine (a BOM, Windows line endings, "dog " for "dog") and must pass.

Categories: study file (S), contenders and environment (C), array data (D), image manifests (M),
output directory (O), external predictions and checkpoints (X).

The catalogue holds 139 cases: 127 bad inputs and 12 odd but valid ones (the last test keeps this count
true). Every bad input's message also says what was expected, never with pydantic's "Value error" prefix
and never sending the user to install an extra of bakeoff for their own module. Beyond this file: an
output directory the user cannot write and a read-only study's report (test_environment.py), Ctrl-C
(test_environment.py), a study.yaml replaced by another study's (tests/test_cli.py), contender names as
folders (test_properties.py)."""

from __future__ import annotations

import copy
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import TINY_STUDY

Setup = Callable[[Path], tuple[list[str], list[str]]]  # tmp -> (CLI args, fragments the message must hold)


def _raw(**changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(TINY_STUDY)
    raw["data"]["params"]["n"] = 120
    raw["protocol"].update(seeds=[0], epochs=1)
    raw["evaluation"].update(speed=False, n_boot=200)
    if "contenders" in changes:  # the baseline is one of the contenders the case brings
        raw["evaluation"].pop("baseline", None)
    for path, value in changes.items():
        node = raw
        *parents, last = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return raw


DELETE = object()


def _study(tmp: Path, raw: dict[str, Any] | None = None, text: str | None = None, name: str = "s.yaml") -> Path:
    path = tmp / name
    if text is not None:
        path.write_text(text)
    else:
        path.write_text(yaml.safe_dump(raw if raw is not None else _raw(), sort_keys=False))
    return path


def run_args(tmp: Path, study: Path, *extra: str) -> list[str]:
    return ["run", str(study), "--out", str(tmp / "out"), *extra]


def study_case(fragments: list[str], text: str | None = None, extra: tuple[str, ...] = (), **changes: Any) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        study = _study(tmp, _raw(**changes), text)
        return run_args(tmp, study, *extra), fragments
    return setup


TINY_YAML = yaml.safe_dump(_raw(), sort_keys=False)


def _npz(tmp: Path, **arrays: Any) -> str:
    path = tmp / "data.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def npz_case(fragments: list[str], make: Callable[[np.random.Generator], dict[str, Any]]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        arrays = make(np.random.default_rng(0))
        raw = _raw(data__source=_npz(tmp, **arrays), data__params={})
        return run_args(tmp, _study(tmp, raw)), fragments
    return setup


def _good_xy(rng: np.random.Generator, n: int = 60) -> dict[str, Any]:
    return {"X": rng.normal(size=(n, 9, 11, 11)).astype(np.float32), "y": np.arange(n) % 2}


def _pngs(tmp: Path, n: int = 24, folder: str = "img", stem: str = "") -> list[str]:
    from PIL import Image

    (tmp / folder).mkdir(exist_ok=True, parents=True)
    names = []
    for i in range(n):
        arr = (np.random.default_rng(i).random((12, 12)) * 255).astype(np.uint8)
        Image.fromarray(arr).save(tmp / folder / f"{stem}{i}.png")
        names.append(f"{folder}/{stem}{i}.png")
    return names


def csv_case(fragments: list[str], rows: Callable[[list[str]], str], encoding: str = "utf-8",
             task: str = "binary_classification", bom: bool = False,
             images: Callable[[Path], list[str]] | None = None, contenders: dict[str, Any] | None = None,
             data: dict[str, Any] | None = None) -> Setup:
    """A manifest (``rows`` of the image names) over images that ``images`` writes (PNGs by default);
    ``data`` settings replace the defaults."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        text = rows((images or _pngs)(tmp))
        (tmp / "m.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding))
        raw = _raw(task=task, data__source=f"csv:{tmp / 'm.csv'}", data__params={}, data__channels=1,
                   data__normalize="minmax", data__split={"kind": "holdout", "val_fraction": 0.25,
                                                         "test_fraction": 0.25, "stratify": False})
        raw["contenders"] = contenders or {"a": {"model": "bakeoff:se_resnet",
                                                 "params": {"spatial_dims": 2, "base_channels": 4, "num_blocks": 1}}}
        raw["evaluation"].pop("baseline", None)
        raw["protocol"]["augment"] = []
        raw["data"].update(data or {})
        return ["check", str(_study(tmp, raw))], fragments
    return setup


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])


def _tifs(tmp: Path, n: int = 24, folder: str = "img") -> list[str]:
    import tifffile

    (tmp / folder).mkdir(exist_ok=True, parents=True)
    names = []
    for i in range(n):
        arr = (np.random.default_rng(i).random((12, 12)) * 65535).astype(np.uint16)
        tifffile.imwrite(tmp / folder / f"{i}.tif", arr)
        names.append(f"{folder}/{i}.tif")
    return names


def _spoilt(make: Callable[[Path], list[str]], which: int, spoil: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """Image files from ``make``, the ``which``-th spoilt (truncated, emptied, ...) after writing."""
    def images(tmp: Path) -> list[str]:
        names = make(tmp)
        spoil(tmp / names[which])
        return names
    return images


def _rows(names: list[str], labels: list[str], sep: str = "\n") -> str:
    return sep.join(["path,label"] + [f"{p},{lab}" for p, lab in zip(names, labels)]) + sep


def _two(names: list[str]) -> list[str]:
    return ["cat" if i % 2 else "dog" for i in range(len(names))]


def out_case(fragments: list[str], prepare: Callable[[Path], Path]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        out = prepare(tmp)
        return ["run", str(_study(tmp)), "--out", str(out)], fragments
    return setup


def _other_study(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "study.yaml").write_text(yaml.safe_dump(_raw(name="other"), sort_keys=False))
    (out / "results.csv").write_text("contender,seed\nx,0\n")
    return out


def _foreign_dir(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("\\section{Results}\n")
    return out


def _file(tmp: Path) -> Path:
    (tmp / "out").write_text("not a directory\n")
    return tmp / "out"


def _under_file(tmp: Path) -> Path:
    (tmp / "f").write_text("x")
    return tmp / "f" / "out"


def scores_case(fragments: list[str], a: Callable[[np.random.Generator], np.ndarray]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        rng = np.random.default_rng(0)
        y = np.arange(40) % 2
        np.savez(tmp / "a.npz", probs=a(rng), y=y)
        np.savez(tmp / "b.npz", probs=rng.random(40), y=y)
        return ["compare", str(tmp / "a.npz"), str(tmp / "b.npz")], fragments
    return setup


def checkpoint_case(fragments: list[str], write: Callable[[Path], None]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        write(tmp / "c.pt")
        return ["evaluate", str(_study(tmp)), "--out", str(tmp / "out"), "--checkpoint", f"cnn={tmp / 'c.pt'}",
                "--checkpoint", f"se={tmp / 'c.pt'}"], fragments
    return setup


class _Obj:
    pass


def _pickled_object(path: Path) -> None:
    import torch

    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Obj()}, path)


BAD: dict[str, Setup] = {
    # S: the study file
    "S-unknown-top-key": study_case(["contendors: unknown key", "did you mean 'contenders'"],
                                    text=TINY_YAML.replace("contenders:", "contendors:")),
    "S-unknown-nested-key": study_case(["protocol.optimiser: unknown key", "did you mean 'optimizer'"],
                                       text=TINY_YAML.replace("  optimizer:", "  optimiser:")),
    "S-unknown-eval-key": study_case(["evaluation.primery", "did you mean 'primary'"],
                                     text=TINY_YAML.replace("  primary:", "  primery:")),
    "S-unknown-optimizer-key": study_case(["optimizer.learning_rate: unknown key", "expected one of", "lr"],
                                          protocol__optimizer={"name": "adam", "learning_rate": 0.1}),
    "S-duplicate-contender": study_case(["key 'cnn' is given twice", "line"],
                                        text=TINY_YAML.replace("  cnn:\n", "  cnn:\n    model: bakeoff:simple_cnn3d\n  cnn:\n", 1)),
    "S-duplicate-protocol-key": study_case(["key 'epochs' is given twice"],
                                           text=TINY_YAML.replace("  epochs: 1\n", "  epochs: 1\n  epochs: 5\n")),
    "S-yaml-syntax": study_case(["not valid YAML", "line"], text="name: x\nprotocol: {epochs: 3\n"),
    "S-empty-file": study_case(["expected a mapping"], text=""),
    "S-top-level-list": study_case(["expected a mapping"], text="- name: x\n"),
    "S-task-typo": study_case(["task", "binary_classification"], task="binary_clasification"),
    "S-epochs-text": study_case(["protocol.epochs", "'ten'"], protocol__epochs="ten"),
    "S-epochs-negative": study_case(["protocol.epochs", "-1"], protocol__epochs=-1),
    "S-fractions-over-one": study_case(["fraction"], data__split={"kind": "holdout", "val_fraction": 0.6,
                                                                  "test_fraction": 0.5}),
    "S-name-with-space": study_case(["name", "my study"], name="my study"),
    "S-no-contenders": study_case(["contenders"], contenders={}),
    "S-set-no-key": study_case(["--set '=5'", "KEY.PATH=VALUE"], extra=("--set", "=5")),
    "S-set-no-equals": study_case(["--set 'protocol.epochs'", "KEY.PATH=VALUE"], extra=("--set", "protocol.epochs")),
    "S-set-unknown-key": study_case(["--set 'protocol.optimiser.lr=0.1'", "did you mean 'optimizer'"],
                                    extra=("--set", "protocol.optimiser.lr=0.1")),
    "S-set-not-a-section": study_case(["--set 'name.x=1'", "'name' is not a section"], extra=("--set", "name.x=1")),
    "S-set-bad-value": study_case(["--set 'protocol.epochs=ten'", "protocol.epochs"],
                                  extra=("--set", "protocol.epochs=ten")),
    # C: contenders and environment
    "C-unknown-model": study_case(["simple_cnn3", "simple_cnn3d"], contenders={"cnn": {"model": "bakeoff:simple_cnn3"}}),
    "C-param-typo": study_case(["base_channel", "base_channels"],
                               contenders={"se": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 3,
                                                                                          "base_channel": 4}}}),
    "C-param-wrong-type": study_case(["base_channels", "sixteen"],
                                     contenders={"se": {"model": "bakeoff:se_resnet",
                                                        "params": {"spatial_dims": 3, "base_channels": "sixteen"}}}),
    "C-2d-net-on-3d-data": study_case(["se"], contenders={"se": {"model": "bakeoff:se_resnet",
                                                                  "params": {"spatial_dims": 2, "base_channels": 4}}}),
    "C-timm-on-3d-data": study_case(["timm:resnet18"], contenders={"r": {"model": "timm:resnet18"}}),
    "C-missing-module": study_case(["cannot import module 'no_such_pkg_xyz.nets'", "PYTHONPATH"], contenders={"u": {"model": "no_such_pkg_xyz.nets:Net"}}),
    "C-missing-callable": study_case(["math", "nothing_here"], contenders={"u": {"model": "math:nothing_here"}}),
    "C-callable-not-a-module": study_case(["os.path:join"], contenders={"u": {"model": "os.path:join"}}),
    "C-callable-raises": study_case(["tests.robustness.oomnet:broken", "depth must be at least 1"],
                                    contenders={"u": {"model": "tests.robustness.oomnet:broken"}}),
    "C-vit-patch-not-dividing": study_case(["monai:ViT", "patch_size 4 does not divide the image size (9, 11, 11)",
                                            "expected"], contenders={"v": {"model": "monai:ViT", "params": {
        "patch_size": 4, "hidden_size": 32, "mlp_dim": 64, "num_layers": 1, "num_heads": 2}}}),
    "C-3d-net-on-2d-images": csv_case(["contenders.a", "bakeoff:simple_cnn3d"], lambda n: _rows(n, _two(n)),
                                      contenders={"a": {"model": "bakeoff:simple_cnn3d"}}),
    "C-unknown-loss": study_case(["protocol.loss", "focall"], protocol__loss={"name": "focall"}),
    "C-loss-param-typo": study_case(["protocol.loss", "gama"], protocol__loss={"name": "bce", "params": {"gama": 2.0}}),
    "C-monitor-unknown": study_case(["select.monitor", "aurok"], protocol__select={"monitor": "val/aurok", "mode": "max"}),
    "C-primary-unknown": study_case(["evaluation.primary", "dice"], evaluation__primary="dice"),
    "C-baseline-unknown": study_case(["baseline", "resnet"], evaluation__baseline="resnet"),
    "C-gpu-without-cuda": study_case(["accelerator", "no CUDA device"], protocol__accelerator="gpu"),
    "C-mps-on-linux": study_case(["accelerator", "'mps'"], protocol__accelerator="mps"),
    "C-fp16-on-cpu": study_case(["precision", "16-mixed", "needs a GPU"], protocol__precision="16-mixed"),
    "C-nodes-without-slurm": study_case(["num_nodes", "need SLURM"], protocol__num_nodes=2),
    # D: array data (npz)
    "D-npz-missing": study_case(["nowhere.npz"], data__source="npz:/nonexistent/nowhere.npz", data__params={}),
    "D-npz-no-X": npz_case(["X"], lambda r: {"images": r.normal(size=(20, 9, 11, 11)), "y": np.arange(20) % 2}),
    "D-npz-nan": npz_case(["NaN or inf"], lambda r: {**_good_xy(r), "X": np.where(np.arange(60)[:, None, None, None] == 3,
                                                                                      np.nan, _good_xy(r)["X"])}),
    "D-npz-float-labels": npz_case(["y", "integer class labels"], lambda r: {**_good_xy(r), "y": np.linspace(0, 1, 60)}),
    "D-npz-labels-outside": npz_case(["labels [2]", "{0, 1}"], lambda r: {**_good_xy(r), "y": np.arange(60) % 3}),
    "D-npz-duplicate-ids": npz_case(["id 'a'", "more than once"],
                                    lambda r: {**_good_xy(r), "ids": np.array(["a"] * 2 + [str(i) for i in range(58)])}),
    "D-npz-wrong-rank": npz_case(["X has shape"], lambda r: {"X": r.normal(size=(60,)), "y": np.arange(60) % 2}),
    "D-npz-truncated": lambda tmp: (
        _truncate(Path(_npz(tmp, **_good_xy(np.random.default_rng(0)))[4:])),
        (run_args(tmp, _study(tmp, _raw(data__source=f"npz:{tmp / 'data.npz'}", data__params={}))),
         ["data.npz", "cannot read"]))[1],
    "D-npz-text-X": npz_case(["X", "numbers"], lambda r: {"X": np.full((60, 9, 11, 11), "a"), "y": np.arange(60) % 2}),
    "D-npz-no-samples": npz_case(["no samples"], lambda r: {"X": np.zeros((0, 9, 11, 11), np.float32),
                                                            "y": np.zeros(0, int)}),
    "D-npz-X-y-lengths": npz_case(["60", "59"], lambda r: {**_good_xy(r), "y": np.arange(59) % 2}),
    "D-npz-one-class": npz_case(["class"], lambda r: {**_good_xy(r), "y": np.zeros(60, int)}),
    # M: image manifests (CSV)
    "M-manifest-missing": study_case(["nope.csv", "not found"], data__source="csv:/nonexistent/nope.csv",
                                     data__params={}),
    "M-missing-column": csv_case(["missing column", "label"], lambda n: "\n".join(["path,klass"] + [f"{p},a" for p in n])),
    "M-empty-label": csv_case(["row 3", "label is empty"], lambda n: _rows(n, ["dog", ""] + _two(n)[2:])),
    "M-nan-label": csv_case(["row 4", "NaN"], lambda n: _rows(n, ["dog", "cat", "NaN"] + _two(n)[3:])),
    "M-third-class-in-binary": csv_case(["m.csv: row 4: label '2'", "3 classes", "expects 2", "fix or remove"], lambda n: _rows(n, [str(i % 3) for i in range(len(n))])),
    "M-image-missing": csv_case(["do not exist", "gone.png"], lambda n: _rows(["img/gone.png"] + n[1:], _two(n))),
    "M-duplicate-rows": csv_case(["rows 2 and 3 name the same image 'img/0.png'", "expected each image once"], lambda n: _rows([n[0]] + n[:-1], _two(n))),
    "M-path-outside-root": csv_case(["row 2", "outside the manifest's folder", "allow_outside_root"],
                                    lambda n: _rows(["../../etc/hostname"] + n[1:], _two(n))),
    "M-not-utf8": csv_case(["not UTF-8"], lambda n: _rows(n, ["chien"] + ["ç" * 1] * (len(n) - 1)), encoding="latin-1"),
    "M-truncated-png": csv_case(["img/5.png", "cannot read image", "expected a complete image file"],
                                lambda n: _rows(n, _two(n)), images=_spoilt(_pngs, 5, _truncate)),
    "M-truncated-tiff": csv_case(["img/7.tif", "cannot read image", "expected a complete image file"],
                                 lambda n: _rows(n, _two(n)), images=_spoilt(_tifs, 7, _truncate)),
    "M-empty-image-file": csv_case(["img/2.png", "cannot read image", "expected a complete image file"],
                                   lambda n: _rows(n, _two(n)), images=_spoilt(_pngs, 2, lambda p: p.write_bytes(b""))),
    "M-header-only": csv_case(["m.csv", "no rows"], lambda n: "path,label\n"),
    # O: the output directory
    "O-out-is-a-file": out_case(["is a file", "expected a directory"], _file),
    "O-out-under-a-file": out_case(["is a file"], _under_file),
    "O-out-holds-another-study": out_case(["'other'", "different settings", "nothing was changed"], _other_study),
    "O-out-foreign-files": out_case(["not a bakeoff study directory", "nothing was changed"], _foreign_dir),
    # X: external predictions and checkpoints
    "X-compare-nan": scores_case(["non-finite", "sample 0"], lambda r: np.where(np.arange(40) == 0, np.nan, r.random(40))),
    "X-compare-logits": scores_case(["outside [0, 1]", "sigmoid"], lambda r: r.normal(size=40) * 3),
    "X-compare-random-bytes": lambda tmp: ((tmp / "a.npz").write_bytes(bytes(range(256)) * 4), (
        ["compare", str(tmp / "a.npz"), str(tmp / "a.npz")], ["cannot read"]))[1],
    "X-checkpoint-random-bytes": checkpoint_case(["damaged or is not a checkpoint"],
                                                 lambda p: p.write_bytes(bytes(range(256)) * 8)),
    "X-checkpoint-pickled-code": checkpoint_case(["arbitrary pickled code"], _pickled_object),
    "X-checkpoint-missing": checkpoint_case(["file not found"], lambda p: None),
}

def npz_dir_case(fragments: list[str], mask_shape: tuple[int, ...], image_shape: tuple[int, ...],
                 spoil: Callable[[Path], None] | None = None) -> Setup:
    """A segmentation folder of .npz volumes (image and mask), saved the obvious way, no spatial_dims."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        rng = np.random.default_rng(0)
        for part, n in (("train", 4), ("val", 2), ("test", 2)):
            (tmp / "vol" / part).mkdir(parents=True)
            for i in range(n):
                mask = (rng.random(mask_shape) > 0.7).astype(np.uint8)
                np.savez(tmp / "vol" / part / f"{i}.npz", image=rng.normal(size=image_shape).astype(np.float32),
                         mask=mask)
        if spoil is not None:
            spoil(tmp / "vol")
        raw = {"name": "vol", "task": "semantic_segmentation",
               "data": {"source": f"npz_dir:{tmp / 'vol'}", "split": {"kind": "predefined"}},
               "protocol": {"seeds": [0], "epochs": 1, "batch_size": 2, "patch_size": [16, 16, 16][:len(mask_shape)],
                            "iterations_per_epoch": 1},
               "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}},
               "evaluation": {"speed": False, "n_boot": 200}}
        return ["check", str(_study(tmp, raw))], fragments
    return setup


def suite_case(fragments: list[str], names: tuple[str, str], second: dict[str, Any] | None = None) -> Setup:
    """A suite file over two copies of the tiny study's data, under the dataset ``names`` (``second``: the
    second dataset's data section instead)."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        base = _raw()
        datas = [base["data"], second or base["data"]]
        raw = {"name": "suite", "task": base["task"], "datasets": {n: {"data": d} for n, d in zip(names, datas)},
               "contenders": base["contenders"], "protocol": base["protocol"], "evaluation": base["evaluation"]}
        return run_args(tmp, _study(tmp, raw, name="suite.yaml")), fragments
    return setup


def _pos_neg(fragments: list[str]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        rng = np.random.default_rng(0)
        for name in ("a", "b"):
            pd_rows = ["id,score,label"] + [f"s{i},{rng.random():.4f},{'pos' if i % 2 else 'neg'}" for i in range(40)]
            (tmp / f"{name}.csv").write_text("\n".join(pd_rows) + "\n")
        return ["compare", str(tmp / "a.csv"), str(tmp / "b.csv")], fragments
    return setup


def png_pairs_case(fragments: list[str], spoil: Callable[[Path], None] | None = None,
                   evaluation: dict[str, Any] | None = None) -> Setup:
    """A segmentation manifest of PNG images and PNG label masks (csv: with columns image,mask,split)."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        from PIL import Image

        rng = np.random.default_rng(0)
        (tmp / "png").mkdir()
        rows = ["image,mask,fold,split"]
        for i, part in enumerate(["1,train"] * 4 + ["0,train"] * 2 + ["-1,test"] * 2):
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8)).save(tmp / "png" / f"{i}.png")
            Image.fromarray((rng.random((24, 24)) > 0.7).astype(np.uint8)).save(tmp / "png" / f"{i}_mask.png")
            rows.append(f"{i}.png,{i}_mask.png,{part}")
        (tmp / "png" / "pairs.csv").write_text("\n".join(rows) + "\n")
        if spoil is not None:
            spoil(tmp / "png")
        raw = {"name": "pairs", "task": "semantic_segmentation",
               "data": {"source": f"csv:{tmp / 'png' / 'pairs.csv'}", "split": {"kind": "column", "column": "fold", "val_fold": 0}},
               "protocol": {"seeds": [0], "epochs": 1, "batch_size": 2, "patch_size": [16, 16],
                            "iterations_per_epoch": 1},
               "contenders": {"unet": {"model": "monai:UNet", "params": {"channels": [4, 8], "strides": [2]}}},
               "evaluation": {"speed": False, "n_boot": 200, **(evaluation or {})}}
        return ["check", str(_study(tmp, raw))], fragments
    return setup


def _rgb_mask(folder: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(folder / "2_mask.png")


def _small_mask(folder: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((24, 20), np.uint8)).save(folder / "5_mask.png")


def tiff_dir_case(fragments: list[str], spoil: Callable[[Path], None] | None = None,
                  mask: Callable[[np.ndarray], np.ndarray] = lambda m: m, folder: str = "tif",
                  patch: list[int] | None = None, params: dict[str, Any] | None = None,
                  data: dict[str, Any] | None = None) -> Setup:
    """A segmentation folder of TIFFs (FOLDER/{train,val,test}/{images,masks}/NAME.tif); ``mask`` alters
    every mask before it is written, ``spoil`` damages the folder after."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        import tifffile

        rng = np.random.default_rng(0)
        root = tmp / folder
        for part, n in (("train", 4), ("val", 2), ("test", 2)):
            for sub in ("images", "masks"):
                (root / part / sub).mkdir(parents=True)
            for i in range(n):
                tifffile.imwrite(root / part / "images" / f"{i}.tif", rng.normal(size=(24, 24)).astype(np.float32))
                m = (rng.random((24, 24)) > 0.7).astype(np.uint8)
                tifffile.imwrite(root / part / "masks" / f"{i}.tif", mask(m))
        if spoil is not None:
            spoil(root)
        raw = {"name": "tif", "task": "semantic_segmentation",
               "data": {"source": f"tiff_dir:{root}", "split": {"kind": "predefined"}, **(data or {})},
               "protocol": {"seeds": [0], "epochs": 1, "batch_size": 2, "patch_size": patch or [16, 16],
                            "iterations_per_epoch": 1},
               "contenders": {"unet": {"model": "monai:UNet",
                                       "params": params or {"channels": [4, 8], "strides": [2]}}},
               "evaluation": {"speed": False, "n_boot": 200}}
        return ["check", str(_study(tmp, raw))], fragments
    return setup


def _nan_image(path: Path) -> None:
    import tifffile

    img = tifffile.imread(path)
    img[3, 4] = np.nan
    tifffile.imwrite(path, img)


BAD["D-tiff-dir-truncated-mask"] = tiff_dir_case(["train/masks/0.tif", "cannot read", "expected a complete TIFF"],
                                                 spoil=lambda r: _truncate(r / "train" / "masks" / "0.tif"))
BAD["D-tiff-dir-nan-image"] = tiff_dir_case(["val/images/1.tif", "NaN or inf", "expected finite values"],
                                            spoil=lambda r: _nan_image(r / "val" / "images" / "1.tif"))
BAD["D-tiff-dir-mask-missing"] = tiff_dir_case(["2.tif", "mask"],
                                               spoil=lambda r: (r / "train" / "masks" / "2.tif").unlink())
BAD["D-tiff-dir-no-training-images"] = tiff_dir_case(["train is empty", "expected images/*.tif"], spoil=lambda r: [
    p.unlink() for p in (r / "train").rglob("*.tif")])
BAD["D-tiff-dir-mask-size"] = tiff_dir_case(["mask", "(20, 20)", "(24, 24)"], mask=lambda m: m[:20, :20])
BAD["D-tiff-dir-float-mask"] = tiff_dir_case(["mask has dtype float32", "expected integer class labels"], mask=lambda m: m.astype(np.float32) / 2)
BAD["C-unet-strides-not-dividing-patch"] = tiff_dir_case(["unet", "patch", "20"], patch=[20, 20],
                                                         params={"channels": [4, 8, 16, 32], "strides": [2, 2, 2]})
BAD["S-suite-dataset-dotdot"] = suite_case(["dataset name '..'", "not a safe folder name", "datasets/NAME/"],
                                          ("..", "b"))
BAD["S-suite-dataset-csv-missing"] = suite_case(["datasets.b:", "manifest", "not found"], ("a", "b"),
                                              {"source": "csv:/nonexistent/folds.csv"})
BAD["S-until-decided-max-seeds-100000"] = study_case(["--max-seeds 100000: expected at most 100", "never end"],
                                                     extra=("--until-decided", "--max-seeds", "100000"))
BAD["S-mask-values-on-classification"] = study_case(["data.mask_values: [0, 255]", "task binary_classification has "
                                                    "no masks", "expected it left out"], data__mask_values=[0, 255])
# a task's own evaluation settings (Task.evaluation_settings) are checked by the task: in another task's study,
# misspelt, or out of range, each is one line naming evaluation.KEY (issue 44)
BAD["S-particle-setting-in-a-classification-study"] = study_case(
    ["evaluation.match_radius", "a setting of task particle_picking, not of binary_classification", "remove it"],
    evaluation__match_radius=6.0)
BAD["S-shared-evaluation-key-misspelt"] = study_case(["evaluation.min_efect: unknown key", "did you mean 'min_effect'"],
                                                     evaluation__min_efect=0.1)
BAD["S-seed-streams-per-contender-override"] = study_case(
    ["contenders.se.protocol.seed_streams", "one kind of seed streams for every contender", "protocol.seed_streams"],
    contenders={"cnn": {"model": "bakeoff:simple_cnn3d"},
                "se": {"model": "bakeoff:simple_cnn3d", "protocol": {"seed_streams": "per_contender"}}})
BAD["O-compare-labels-pos-neg"] = _pos_neg(["a.csv: labels ['neg', 'pos'] are not 0/1", "pos -> 1, neg -> 0"])
BAD["S-segmentation-setting-misspelt"] = png_pairs_case(["evaluation.nsd_tolerence: unknown key",
                                                        "did you mean 'nsd_tolerance'"],
                                                       evaluation={"nsd_tolerence": 2.0})
BAD["S-segmentation-setting-out-of-range"] = png_pairs_case(["evaluation.nsd_tolerance", "expected greater than 0",
                                                            "(got -1.0)"], evaluation={"nsd_tolerance": -1.0})
BAD["D-png-pairs-rgb-mask"] = png_pairs_case(["2_mask.png", "mask is a RGB image", "expected a label image"],
                                            _rgb_mask)
BAD["D-png-pairs-mask-size"] = png_pairs_case(["5_mask.png", "mask is 24 x 20 but its image 5.png is 24 x 24"],
                                            _small_mask)
BAD["D-png-pairs-truncated-image"] = png_pairs_case(["3.png", "cannot read image"],
                                                  lambda f: _truncate(f / "3.png", 0.4))
BAD["D-npz-dir-truncated"] = npz_dir_case(["train/1.npz", "cannot read"], (16, 16, 16), (16, 16, 16),
                                          spoil=lambda r: _truncate(r / "train" / "1.npz"))
BAD["D-npz-dir-no-mask-array"] = npz_dir_case(["val/0.npz", "mask"], (16, 16, 16), (16, 16, 16),
                                              spoil=lambda r: np.savez(r / "val" / "0.npz", image=np.zeros((16, 16, 16))))
BAD["D-npz-dir-mask-mismatch"] = npz_dir_case(["mask has shape (16, 16, 12)", "(16, 16, 16)"], (16, 16, 16),
                                              (16, 16, 16), spoil=lambda r: np.savez(
                                                  r / "test" / "1.npz", image=np.zeros((16, 16, 16), np.float32),
                                                  mask=np.zeros((16, 16, 12), np.uint8)))
BAD["D-npz-dir-mask-rank-4"] = npz_dir_case(["mask has shape (2, 16, 16, 16)", "data.spatial_dims"],
                                            (2, 16, 16, 16), (2, 16, 16, 16))

# issue 23: everyday mistakes that trained on the wrong thing, wrote outside the study or gave a traceback
def _fold_rows(names: list[str], folds: list[str]) -> str:
    return "\n".join(["path,label,fold"] + [f"{p},{lab},{f}" for p, lab, f in zip(names, _two(names), folds)]) + "\n"


def _five_folds(n: int, **cells: str) -> list[str]:
    """Fold cells 0..4 in turn, with the cells at the given indices (``i3="a"``) replaced."""
    folds = [str(i % 5) for i in range(n)]
    for key, value in cells.items():
        folds[int(key[1:])] = value
    return folds


def _with_copies(tmp: Path) -> list[str]:
    """24 PNGs, 12 of which are the same picture under other names: some land in another part of a split."""
    import shutil

    names = _pngs(tmp)
    for i in range(1, 24, 2):
        shutil.copy(tmp / names[0], tmp / names[i])
    return names


def _out_in_folder_data(tmp: Path) -> tuple[list[str], list[str]]:
    from PIL import Image

    for k, c in enumerate(("cat", "dog")):
        (tmp / "data" / c).mkdir(parents=True)
        for i in range(12):
            Image.fromarray((np.random.default_rng([k, i]).random((12, 12)) * 255).astype(np.uint8)).save(
                tmp / "data" / c / f"{i}.png")
    raw = _raw(data__source=f"folder:{tmp / 'data'}", data__params={}, data__channels=1, data__normalize="minmax",
               contenders={"a": {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 4,
                                                                         "num_blocks": 1}}})
    raw["protocol"]["augment"] = []
    return (["run", str(_study(tmp, raw)), "--out", str(tmp / "data" / "results")],
            ["lies inside the data folder", "expected an output directory outside it"])


def _scores_with_ids(fragments: list[str], ids_a: list[str], ids_b: list[str]) -> Setup:
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        rng = np.random.default_rng(0)
        y = np.arange(40) % 2
        np.savez(tmp / "a.npz", probs=rng.random(40), y=y, ids=np.array(ids_a))
        np.savez(tmp / "b.npz", probs=rng.random(40), y=y, ids=np.array(ids_b))
        return ["compare", str(tmp / "a.npz"), str(tmp / "b.npz")], fragments
    return setup


_IDS = [f"s{i}" for i in range(40)]


def _other_width(tmp: Path) -> tuple[list[str], list[str]]:
    """A best.ckpt of a bakeoff run of the same architecture trained at another width (its run.json beside)."""
    import json

    import torch

    from bakeoff.models import create_model

    params = {"spatial_dims": 3, "base_channels": 8, "num_blocks": 1}
    net = create_model("bakeoff:se_resnet", in_channels=1, num_outputs=1, spatial_dims=3, input_shape=(9, 11, 11),
                       params=params)
    (tmp / "run" / "checkpoints").mkdir(parents=True)
    torch.save(net.state_dict(), tmp / "run" / "checkpoints" / "best.ckpt")
    (tmp / "run" / "run.json").write_text(json.dumps({"params": params}))
    return (["evaluate", str(_study(tmp)), "--out", str(tmp / "out"), "--checkpoint",
             f"se={tmp / 'run' / 'checkpoints' / 'best.ckpt'}"],
            ["of another shape", "base_channels: 8 in the checkpoint's run, 4 here", "expected the params"])


_SE2D = {"model": "bakeoff:se_resnet", "params": {"spatial_dims": 2, "base_channels": 4, "num_blocks": 1}}
_CNN = {"model": "bakeoff:simple_cnn3d"}

BAD.update({
    # 1. masks that are not class labels
    "D-tiff-dir-masks-0-255": tiff_dir_case(["the masks hold the values [0, 255]", "not the class labels 0..1",
                                             "data.mask_values: [0, 255]"], mask=lambda m: m * 255),
    "D-tiff-dir-mask-value-not-listed": tiff_dir_case(["mask values [255] are not in data.mask_values [0, 128]"],
                                                      mask=lambda m: m * 255, data={"mask_values": [0, 128]}),
    # 2. fold cells
    "M-kfold-column-blank": csv_case(["column 'fold' is blank in 2 row(s)", "row 4, row 9", "expected a fold number"],
                                     lambda n: _fold_rows(n, _five_folds(len(n), i2="", i7="")),
                                     data={"split": {"kind": "kfold_column"}}),
    "M-kfold-column-not-integer": csv_case(["column 'fold' is not an integer", "row 7 ('a')", "expected a fold number"],
                                           lambda n: _fold_rows(n, _five_folds(len(n), i5="a")),
                                           data={"split": {"kind": "kfold_column"}}),
    # 3. one image twice
    "M-same-image-two-spellings": csv_case(["rows 5 and 7 name the same image 'img/3.png'", "expected each image once"],
                                           lambda n: _rows(n[:5] + ["./" + n[3]] + n[6:], _two(n))),
    "M-pixel-identical-across-parts": csv_case(["pixel-identical twin in another part", "data.allow_duplicates: true"],
                                               lambda n: _rows(n, _two(n)), images=_with_copies),
    # 4. a transformer's patches that do not tile the image
    "C-timm-vit-patch-not-dividing": csv_case(
        ["timm:vit_tiny_patch16_224", "patch size (16, 16) does not divide the image size (20, 20)", "expected"],
        lambda n: _rows(n, _two(n)), data={"image_size": 20},
        contenders={"v": {"model": "timm:vit_tiny_patch16_224", "params": {"img_size": 20}}}),
    # 5. names that are not safe folder names
    "C-contender-dotdot": study_case(["contender name '..'", "not a safe folder name", "rename it"],
                                     contenders={"..": _CNN, "se": _CNN}),
    "C-contender-300-characters": study_case(["(300 characters) is not a safe folder name", "1-64"],
                                             contenders={"a" * 300: _CNN, "se": _CNN}),
    "C-contender-with-slash": study_case(["contender name 'a/b'", "e.g. 'a_b'"], contenders={"a/b": _CNN, "se": _CNN}),
    # 6. the output inside the data
    "O-out-inside-folder-data": _out_in_folder_data,
    # 8. an empty checkpoint
    "X-checkpoint-empty": checkpoint_case(["the file is empty (0 bytes)", "expected a checkpoint written by torch.save"],
                                          lambda p: p.write_bytes(b"")),
    "X-checkpoint-other-width": _other_width,
    # 9. user text printed as written: no emoji codes, no markup
    "C-callable-emoji-name": study_case(["badmods:boom", "cannot import module 'badmods'"],
                                        contenders={"u": {"model": "badmods:boom"}}),
    "C-callable-emoji-code": study_case(["'badmods:boom:'"], contenders={"u": {"model": "badmods:boom:"}}),
    "C-callable-markup-name": study_case(["cannot import module 'bad[bold]mods'"],
                                         contenders={"u": {"model": "bad[bold]mods:net"}}),
    # messages that name the fix
    "S-yaml-tab-indent": study_case(["line 17: a tab indents this line", "expected spaces"],
                                    text=TINY_YAML.replace("  epochs:", "\tepochs:")),
    "S-two-yaml-documents": study_case(["a second YAML document starts here", "expected one study per file"],
                                       text=TINY_YAML + "---\n" + TINY_YAML),
    "C-contender-key-typo": study_case(["contenders.cnn.parms: unknown key", "did you mean 'params'"],
                                       contenders={"cnn": {**_CNN, "parms": {"x": 1}}}),
    "C-contender-protocol-typo": study_case(["contenders.cnn.protocol: optimizer.lrate: unknown key",
                                             "expected one of name, lr"],
                                            contenders={"cnn": {**_CNN, "protocol": {"optimizer": {"lrate": 0.1}}}}),
    "S-set-into-a-value": study_case(["--set 'protocol.epochs.max=3'", "'epochs' is not a section",
                                      "--set protocol.epochs=VALUE"], extra=("--set", "protocol.epochs.max=3")),
    "D-npz-object-array": npz_case(["array 'X' holds Python objects", "expected numeric arrays"],
                                   lambda r: {"X": np.array([np.zeros(3), np.zeros(4)], dtype=object), "y": np.arange(2)}),
    "D-npz-half-label": npz_case(["y of sample 3 is 0.5", "expected integer class labels"],
                                 lambda r: {**_good_xy(r), "y": np.where(np.arange(60) == 3, 0.5, np.arange(60) % 2)}),
    "M-half-label-among-integers": csv_case(["row 5: label '0.5' is not an integer like the other labels",
                                             "expected integer labels 0..K-1"],
                                            lambda n: _rows(n, [("0.5" if i == 3 else str(i % 2)) for i in range(len(n))])),
    "M-path-is-a-folder": csv_case(["row 2", "is a folder", "expected the path of one image file"],
                                   lambda n: _rows(["img"] + n[1:], _two(n))),
    "M-manifest-is-a-folder": lambda tmp: (
        ["check", str(_study(tmp, _raw(data__source=f"csv:{tmp}", data__params={})))],
        ["is a folder", "expected a CSV manifest file"]),
    "X-compare-one-differing-id": _scores_with_ids(["1 only in", "'s7'", "'s7x'", "expected the same samples"],
                                                   _IDS, [*_IDS[:7], "s7x", *_IDS[8:]]),
    "X-compare-repeated-id": _scores_with_ids(["sample id 's3' occurs 2 times", "expected each sample once"],
                                              [*_IDS[:4], "s3", *_IDS[5:]], _IDS),
})


FINE: dict[str, Setup] = {
    "D-png-pairs-manifest": png_pairs_case(["ok", "8 samples", "decode to"]),
    "D-npz-dir-3d-volumes-inferred": npz_dir_case(["ok", "8 samples"], (16, 16, 16), (16, 16, 16)),
    "S-bom-study-file": lambda tmp: (["check", str(_study(tmp, text="\ufeff" + TINY_YAML))], ["ok"]),
    "M-bom-manifest": csv_case(["ok"], lambda n: _rows(n, _two(n)), bom=True),
    "M-windows-line-endings": csv_case(["ok"], lambda n: _rows(n, _two(n), sep="\r\n")),
    "M-non-ascii-paths": csv_case(["ok", "24 samples"], lambda n: _rows(n, _two(n)),
                                  images=lambda tmp: _pngs(tmp, folder="données/échantillons", stem="ïmage_µ")),
    "D-tiff-dir-non-ascii-folder": tiff_dir_case(["ok", "8 samples"], folder="Zellkerne_ø"),
    "C-vit-patches-tiling-the-image": lambda tmp: (["check", str(_study(tmp, _raw(contenders={"v": {
        "model": "monai:ViT", "params": {"patch_size": [3, 11, 11], "hidden_size": 32, "mlp_dim": 64, "num_layers": 1,
                                         "num_heads": 2, "classification": True}}})))], ["ok"]),
    "D-tiff-dir-masks-0-255-mapped": tiff_dir_case(["ok", "8 samples"], mask=lambda m: m * 255,
                                                   data={"mask_values": [0, 255]}),
    "M-pixel-identical-allowed": csv_case(["ok"], lambda n: _rows(n, _two(n)), images=_with_copies,
                                          data={"allow_duplicates": True}),
    "C-contender-names-at-the-edge": lambda tmp: (["check", str(_study(tmp, _raw(contenders={
        "a..b": _CNN, "9-._x": _CNN, "Z" * 64: _CNN})))], ["ok"]),
    "M-trailing-spaces": csv_case(["ok", "24 samples"], lambda n: _rows(n, [lab + (" " if i % 4 == 0 else "")
                                                                          for i, lab in enumerate(_two(n))])),
}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from bakeoff.cli import main

    old = sys.argv
    sys.argv = ["bakeoff", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_before_any_training(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    args, fragments = BAD[case](tmp_path)
    before = _snapshot(tmp_path)
    code, out, err = _cli(args, capsys)
    message = " ".join(err.split())
    assert code == 2, (code, err[-2000:], out[-2000:])
    assert "Traceback" not in err and message.startswith("error: "), err
    assert "Value error" not in message and "expected" in message.lower() and "pip install 'bakeoff[" not in message, message
    for f in fragments:
        assert f in message, (f, message)
    assert not list(tmp_path.glob("**/runs/*/*/run.json")), "training started"
    after = _snapshot(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, "a file that was there changed"


@pytest.mark.parametrize("case", sorted(FINE))
def test_odd_but_valid_input_passes(case, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    args, fragments = FINE[case](tmp_path)
    code, out, err = _cli(args, capsys)
    assert code == 0, err[-2000:]
    for f in fragments:
        assert f in " ".join(out.split()), out


def test_the_catalogue_covers_each_category():
    cats: dict[str, int] = {}
    for name in [*BAD, *FINE]:
        cats[name.split("-")[0]] = cats.get(name.split("-")[0], 0) + 1
    assert set(cats) == {"S", "C", "D", "M", "O", "X"}, cats
    import re

    said = re.search(r"holds (\d+) cases: (\d+) bad inputs and (\d+) odd", __doc__ or "")
    assert said and tuple(map(int, said.groups())) == (len(BAD) + len(FINE), len(BAD), len(FINE)), said
