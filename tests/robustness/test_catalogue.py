"""A catalogue of bad inputs, each fed to the CLI as a user would (``bakeoff run``, ``check``, ``compare``,
``evaluate``; in this process, for speed): the exit code is 2, the one-line message names the culprit
and what was expected, no traceback is printed, no training starts (no run directory appears), and
every file already in the output directory is byte-identical afterwards. A few cases are inputs that
look odd but are fine (a BOM, Windows line endings, "dog " for "dog") and must pass.

Categories: study file (S), contenders and environment (C), array data (D), image manifests (M),
output directory (O), external predictions and checkpoints (X)."""

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
             images: Callable[[Path], list[str]] | None = None, contenders: dict[str, Any] | None = None) -> Setup:
    """A manifest (``rows`` of the image names) over images that ``images`` writes (PNGs by default)."""
    def setup(tmp: Path) -> tuple[list[str], list[str]]:
        text = rows((images or _pngs)(tmp))
        data = text.encode(encoding)
        (tmp / "m.csv").write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
        raw = _raw(task=task, data__source=f"csv:{tmp / 'm.csv'}", data__params={}, data__channels=1,
                   data__normalize="minmax", data__split={"kind": "holdout", "val_fraction": 0.25,
                                                         "test_fraction": 0.25, "stratify": False})
        raw["contenders"] = contenders or {"a": {"model": "bakeoff:se_resnet",
                                                 "params": {"spatial_dims": 2, "base_channels": 4, "num_blocks": 1}}}
        raw["evaluation"].pop("baseline", None)
        raw["protocol"]["augment"] = []
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
    "C-missing-module": study_case(["no_such_pkg_xyz"], contenders={"u": {"model": "no_such_pkg_xyz.nets:Net"}}),
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
    "M-third-class-in-binary": csv_case(["3 classes", "expects 2"], lambda n: _rows(n, [str(i % 3) for i in range(len(n))])),
    "M-image-missing": csv_case(["do not exist", "gone.png"], lambda n: _rows(["img/gone.png"] + n[1:], _two(n))),
    "M-duplicate-rows": csv_case(["img/0.png", "more than once"], lambda n: _rows([n[0]] + n[:-1], _two(n))),
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


def tiff_dir_case(fragments: list[str], spoil: Callable[[Path], None] | None = None,
                  mask: Callable[[np.ndarray], np.ndarray] = lambda m: m, folder: str = "tif",
                  patch: list[int] | None = None, params: dict[str, Any] | None = None) -> Setup:
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
               "data": {"source": f"tiff_dir:{root}", "split": {"kind": "predefined"}},
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


BAD["D-tiff-dir-truncated-mask"] = tiff_dir_case(["train/masks/0.tif", "cannot read"],
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

FINE: dict[str, Setup] = {
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
    assert len(BAD) + len(FINE) >= 60 and set(cats) == {"S", "C", "D", "M", "O", "X"}, cats
