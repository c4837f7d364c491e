"""The study schema (pydantic), YAML loading, ``--set`` overrides and fingerprints.

Every field has a default here and nowhere else; the resolved study (all defaults filled in) is what
``DIR/study.yaml`` holds.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bakeoff.components import import_callable
from bakeoff.errors import BakeoffError
from bakeoff.utils import stable_hash

# Study and contender names become folder and file names: letters, digits, '_', '.', '-', starting with a
# letter or digit (never '.', '..' or a hidden name), at most MAX_NAME characters.
MAX_NAME = 64
SAFE_NAME = rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}$"

# The schema knows no task: ``task`` is a name, and what a task implies (its primary metric, the metric
# and direction checkpoints are selected on) is left None here and filled in by ``bakeoff.tasks.resolve_study``
# from the task's own declaration. ``bakeoff.tasks.load_study`` reads and resolves a study file in one call.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SplitConfig(_Strict):
    """How samples are divided into train / val / test.

    ``holdout``: one split with ``val_fraction`` and ``test_fraction``.
    ``kfold``: ``folds`` runs; each fold is the test set once, and ``val_fraction`` of the rest is
    held out for validation (checkpoint selection, early stopping).
    ``predefined``: the data's own fold column (npz array ``folds``); each value is the test set once.
    """

    kind: Literal["holdout", "kfold", "predefined", "column", "kfold_column"] = "holdout"
    # column / kfold_column (csv manifests): the CSV column holding each image's fold; ``column`` uses
    # ``val_fold`` for validation and trains on the rest, ``kfold_column`` runs every fold value once.
    # Rows whose ``split`` column says "test" are the test set; without any, validation doubles as test.
    column: str = "fold"
    val_fold: str | int = 0
    val_fraction: float = Field(0.2, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    folds: int = Field(5, ge=2)
    stratify: bool = True
    grouped: bool = True  # keep every group (embryo, patient, ...) on one side when the data declare groups
    seed: int = 0

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        if self.kind == "holdout" and self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction is {self.val_fraction + self.test_fraction:g}; expected "
                             f"less than 1 (some samples must be left to train on)")
        return self


class DataConfig(_Strict):
    source: str = "builtin:spots3d"
    params: dict[str, Any] = Field(default_factory=dict)
    normalize: Literal["minmax", "zscore", "imagenet", "dataset", "none"] = "minmax"
    # image files (csv:, folder:): resize to image_size (int or [h, w]) and convert to channels (1 or 3)
    image_size: int | list[int] | None = None
    channels: Literal[1, 3] | None = None
    spatial_dims: Literal[2, 3] | None = None
    split: SplitConfig = Field(default_factory=SplitConfig)
    # a pixel-identical sample in two parts of a split (train and test) is refused unless this is set;
    # when set, the fairness audit and the methods paragraph say how many there are
    allow_duplicates: bool = False
    # image paths in a CSV manifest must lie under the manifest's folder unless this is set (a shared
    # manifest cannot make bakeoff read elsewhere on the machine)
    allow_outside_root: bool = False
    # segmentation: the number of labels in the masks (background included; None: from the data) and the
    # physical size of a pixel/voxel per spatial axis, used by boundary metrics (None: 1 per axis)
    num_classes: int | None = Field(None, ge=2)
    spacing: list[float] | None = None
    # segmentation: the values the masks hold, in class order, when they are not 0..K-1 (a binary mask
    # saved as 0/255 by Fiji: [0, 255]); recorded in the methods paragraph
    mask_values: list[int] | None = None
    # image files (csv:, folder:): where their decoded pixels are kept (None: DIR/cache under --out; a
    # folder shared between studies of the same data decodes them once for all), and whether the decoded
    # pixels are read into memory whole (None: when they take at most 2 GiB stored; false: always streamed
    # by batch from the cache). Neither changes a result, so neither is part of a run's identity.
    cache_dir: str | None = None
    in_memory: bool | None = None

    # settings of where and how, not of what: left out of the study's fingerprint and the runs' hashes
    LOCAL: ClassVar[frozenset[str]] = frozenset({"cache_dir", "in_memory"})

    def identity(self) -> dict[str, Any]:
        """What shapes the runs (the hashes): every setting but where the pixels are kept and how read."""
        return self.model_dump(mode="json", exclude=set(self.LOCAL))

    @field_validator("source")
    @classmethod
    def _source(cls, v: str) -> str:
        kind, _, rest = v.partition(":")
        if not kind or not rest:  # which kinds exist is the source registry's to say, when data load
            raise ValueError(f"expected 'builtin:NAME', 'npz:PATH', 'npz_dir:FOLDER', 'tiff_dir:FOLDER', "
                             f"'csv:MANIFEST', 'folder:ROOT' (bakeoff list sources) or your own loader "
                             f"'package.module:callable', got {v!r}")
        return v

    @field_validator("mask_values")
    @classmethod
    def _mask_values(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (len(v) < 2 or len(set(v)) != len(v)):
            raise ValueError(f"expected two or more distinct values, one per class in class order, got {v}")
        return v

    @field_validator("spacing")
    @classmethod
    def _spacing(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(s <= 0 for s in v):
            raise ValueError(f"every spacing must be > 0, got {v}")
        return v


class OptimizerConfig(_Strict):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    # unset: PyTorch's own default for the optimizer named (AdamW 0.01, Adam and SGD 0), written into the
    # resolved study.yaml; a user who names AdamW gets AdamW
    weight_decay: float | None = Field(None, ge=0)
    momentum: float = Field(0.9, ge=0)  # sgd only (PyTorch's SGD default is 0; stated in study.yaml)

    @model_validator(mode="after")
    def _torch_weight_decay(self) -> OptimizerConfig:
        if self.weight_decay is None:
            self.weight_decay = 0.01 if self.name == "adamw" else 0.0
        return self


class ScheduleConfig(_Strict):
    name: Literal["none", "onecycle", "cosine"] = "none"
    pct_start: float = Field(0.3, gt=0, lt=1)  # onecycle
    min_lr: float = Field(0.0, ge=0)  # cosine


ClassWeighting = Literal["none", "balanced", "inverse_frequency", "inverse_sqrt_frequency", "effective_number"]


class LossConfig(_Strict):
    """The loss, its own settings (``params``) and the class weighting (from the training split only).

    ``name``: a registered loss (``bakeoff list losses``: bce, ce, cumulative_link, focal, dice, dice_ce,
    focal_dice, tversky, balanced_softmax_tversky) or your own ``package.module:callable``; ``params``: the
    loss's settings, e.g. ``{alpha: 0.3, beta: 0.7}`` for tversky (checked against the loss's signature).
    Weighting: ``balanced`` n / (K n_c) (scikit-learn); ``inverse_frequency`` 1 / f_c; ``inverse_sqrt_frequency``
    1 / sqrt(f_c); ``effective_number`` (1 - beta) / (1 - beta^n_c) (Cui et al. 2019); all rescaled to mean 1.
    Segmentation counts pixels. ``tversky`` weighs false positives by ``alpha`` and false negatives by
    ``beta``; ``balanced_softmax_tversky`` shifts the logits by ``tau`` * log(class prior) first.
    ``cumulative_link`` (ordinal tasks): the network outputs one score s and P(y > k) = sigmoid(s - theta_k)
    with learned ordered thresholds (proportional-odds model), trained by the likelihood of the true grade.
    """

    name: str | None = None  # None: the task's default
    params: dict[str, Any] = Field(default_factory=dict)
    class_weights: ClassWeighting | list[float] = "none"
    effective_beta: float = Field(0.999, gt=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        moved = [k for k in ("gamma", "alpha", "beta", "tau", "include_background", "lambda_ce")
                 if isinstance(data, dict) and k in data]
        if moved:
            shown = ", ".join(f"{k}: {data[k]}" for k in moved)
            raise ValueError(f"{', '.join(moved)}: a loss's own settings go under params; expected "
                             f"loss: {{name: {data.get('name')}, params: {{{shown}}}}}")
        return data


class SelectConfig(_Strict):
    """Which checkpoint counts: the epoch with the best ``monitor`` on the validation split."""

    monitor: str | None = None  # None: the task's default primary metric (bakeoff.tasks.resolve_study)
    mode: Literal["min", "max"] | None = None  # None: the monitored metric's direction

    @field_validator("monitor")
    @classmethod
    def _val_only(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("val/"):
            raise ValueError(f"selection must use a validation metric 'val/<metric>', got {v!r}")
        return v


class EarlyStoppingConfig(_Strict):
    monitor: str | None = None  # None: the selection metric
    patience: int = Field(10, ge=1)
    min_delta: float = 0.0


AugmentName = Literal["flip", "rot90", "rotate"]


class ProtocolConfig(_Strict):
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    augment: list[AugmentName] = Field(default_factory=list)
    rotate_degrees: float = Field(15.0, ge=0, le=180)
    early_stopping: EarlyStoppingConfig | None = None
    gradient_clip: float | None = Field(None, gt=0)
    precision: Literal["32-true", "16-mixed", "bf16-mixed", "64-true"] = "32-true"
    select: SelectConfig = Field(default_factory=SelectConfig)
    # auto: deterministic kernels wherever they exist, ops without one run anyway and are recorded; warn: the
    # same with PyTorch's warnings shown; true: strict (an op without one raises); false: off (fastest kernels)
    deterministic: bool | Literal["auto", "warn"] = "auto"
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = 1
    # nodes one run trains on (DDP over num_nodes x devices processes, started as SLURM tasks; backend slurm)
    num_nodes: int = Field(1, ge=1)
    num_workers: int = Field(0, ge=0)  # loader processes for patches read from disk (in-memory arrays need none)
    tf32: bool = False  # allow TensorFloat-32 matmuls/convolutions on Ampere+ GPUs
    compile: bool = False  # torch.compile the network; the compile time is reported apart from training time
    # segmentation: random patches of patch_size (None: whole images) with iterations_per_epoch batches
    # per epoch (None: one pass's worth of patches), sampled uniformly or class-balanced (a class drawn
    # uniformly among those in the training masks, then a patch centred on one of its pixels); whole
    # images are predicted with sliding-window inference (MONAI) at this overlap
    patch_size: list[int] | None = None
    iterations_per_epoch: int | None = Field(None, ge=1)
    patch_sampling: Literal["uniform", "class_balanced"] = "uniform"
    sliding_window_overlap: float = Field(0.25, ge=0, lt=1)
    sliding_window_mode: Literal["gaussian", "constant"] = "gaussian"
    log_grad_norm: bool = True  # the total gradient norm, sampled every 10 steps, logged per epoch
    # shared: a seed drives the same random streams (initialisation, data order, augmentation) for every
    # contender, so a seed's runs of two contenders may be good or bad together and the verdict uses the
    # spread of their paired differences; per_contender: each contender's streams come from (seed, its
    # name), its runs independent of the others' by construction, and the verdict pools the two
    # contenders' seed spreads (more degrees of freedom, more power with few seeds: docs/statistics.md)
    seed_streams: Literal["shared", "per_contender"] = "shared"

    @field_validator("seeds")
    @classmethod
    def _unique(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v

    def run_settings(self) -> dict[str, Any]:
        """What shapes one run: every setting but the list of seeds beside it (the run's own seed is part
        of its identity separately), so that adding seeds to a study leaves its finished runs as they are;
        ``seed_streams`` only when it is not the default, so that its arrival changed no run's hash."""
        return self.model_dump(mode="json", exclude={"seeds"} | self._defaults_left_out())

    def _defaults_left_out(self) -> set[str]:
        return {"seed_streams"} if self.seed_streams == "shared" else set()

    def stream_seed(self, seed: int, contender: str) -> int:
        """The seed of a run's random streams: the study's seed itself with shared streams; with
        per-contender streams one drawn from (seed, contender name), the same on every machine."""
        if self.seed_streams == "shared":
            return seed
        return int.from_bytes(hashlib.blake2b(f"{seed}:{contender}".encode(), digest_size=4).digest(), "big") % 2**31


class ContenderConfig(_Strict):
    model: str
    params: dict[str, Any] = Field(default_factory=dict)
    # Overrides of the shared protocol for this contender only; each one is a recorded deviation.
    protocol: dict[str, Any] = Field(default_factory=dict)
    # Dense tasks: a module name of this network (``bakeoff models`` / ``model.named_modules()``) whose
    # activations on the first validation image are saved and drawn (plots/feature_maps.png).
    feature_layer: str | None = None

    def identity(self) -> dict[str, Any]:
        """What defines the contender's runs (an unset feature_layer is left out, so adding the field
        did not change the hash of existing runs)."""
        return self.model_dump(mode="json", exclude={"feature_layer"} if self.feature_layer is None else None)


class SequentialConfig(_Strict):
    """``evaluation.sequential``: add one seed per contender per round (the same for all) while a pair is
    undecided and can still be decided, up to ``max_seeds``; error control across the looks by Lan–DeMets
    alpha spending (``bakeoff.stats.sequential``)."""

    max_seeds: int = Field(10, ge=3, le=100)
    spending: Literal["obrien_fleming", "pocock"] = "obrien_fleming"


class EvaluationConfig(_Strict):
    """The evaluation settings every task shares. A task's own settings (``Task.evaluation_settings``, a
    pydantic model in the task's module: segmentation's ``include_background``, particle picking's
    ``match_radius``, ...) are further keys of this section, kept as given here and checked, with their
    defaults filled in, by the task when the study is resolved (``bakeoff.tasks.resolve_study``): an
    unknown key is answered there, with the close matches among these keys and the task's."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    primary: str | None = None  # None: the task's default (bakeoff.tasks.resolve_study)
    # your own metrics, package.module:function each, decorated with @bakeoff.register_metric: imported
    # (and so registered) when the study is read, then usable by name like a built-in metric
    metrics: list[str] = Field(default_factory=list)
    baseline: str | None = None  # None: the first contender
    min_effect: float = Field(0.0, ge=0)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    # one seed cannot estimate how much a contender's score varies from seed to seed: its verdict is about the
    # trained weights. A stated seed-to-seed sd of the paired difference (metric units, e.g. from an earlier
    # study's `bakeoff plan`) makes it a verdict about the training recipe under that assumption.
    seed_sd: float | None = Field(None, gt=0)
    # a sequential study (also `bakeoff run --until-decided`): seeds are added until the verdicts are known
    sequential: SequentialConfig | None = None
    pairs: Literal["baseline", "all"] = "baseline"  # each contender against the baseline, or every pair
    n_boot: int = Field(2000, ge=200)  # per-run bootstrap intervals (intervals.csv)
    n_permutations: int = Field(999, ge=99)  # DeLong's fallback when its variance is zero or undefined
    threshold: float = Field(0.5, gt=0, lt=1)
    # Also report threshold-dependent test metrics at a threshold chosen on each run's validation split
    # (Youden's J or best F1); the test split never influences it.
    val_threshold: Literal["none", "youden", "f1"] = "none"
    # Almost Stochastic Order on the per-run scores (Dror et al. 2019) via deepsig, a GPL-3.0 optional
    # extra: pip install 'bakeoff[aso]'.
    aso: bool = False
    speed: bool = True  # measure inference latency and throughput per run
    speed_repeats: int = Field(10, ge=1)
    qualitative_samples: int = Field(4, ge=0)  # validation images drawn with each contender's prediction
    # 2D classification: Grad-CAM of this many validation images (the same for every contender), computed
    # when a run is trained or evaluated (pytorch-grad-cam: pip install 'bakeoff[gradcam]'); off unless asked
    gradcam: int = Field(0, ge=0)


    @field_validator("metrics")
    @classmethod
    def _import_metrics(cls, v: list[str]) -> list[str]:
        for i, ref in enumerate(v):  # importing the module registers its metric (@bakeoff.register_metric)
            fn = import_callable(ref, f"evaluation.metrics[{i}]")
            if getattr(getattr(fn, "metric", None), "compute", None) is None:
                raise BakeoffError(f"evaluation.metrics[{i}]: {ref} is not a metric; expected a function decorated "
                                   f"with @bakeoff.register_metric(higher_is_better=..., tasks=[...])")
        return v

    def run_settings(self) -> dict[str, Any]:
        """The evaluation settings that a run itself uses (the rest only shape the report)."""
        return {"speed": self.speed, "speed_repeats": self.speed_repeats}


class SearchDimension(_Strict):
    """A range (``low``, ``high``, optionally ``log``; integers stay integers) or a list of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDimension:
        if self.choices is None and (self.low is None or self.high is None):
            raise ValueError("expected low and high, or choices")
        if self.choices is None and not self.low < self.high:
            raise ValueError(f"expected low < high, got {self.low} and {self.high}")
        if self.log and self.choices is None and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class TuningConfig(_Strict):
    """``equal_budget``: every contender gets the same number of Optuna trials over the same space,
    judged on the validation split of the first fold with the first seed; the best setting is then
    trained on every seed and fold. ``none``: every contender uses the protocol as written."""

    mode: Literal["none", "equal_budget"] = "none"
    trials: int = Field(10, ge=1)
    space: dict[str, SearchDimension] = Field(default_factory=dict)  # protocol paths, e.g. optimizer.lr
    seed: int = 0

    @model_validator(mode="after")
    def _space(self) -> TuningConfig:
        if self.mode == "equal_budget" and not self.space:
            raise ValueError("equal_budget tuning needs a search space, e.g. {optimizer.lr: {low: 1e-4, "
                             "high: 1e-2, log: true}}")
        for path in self.space:
            if path.split(".")[0] not in ProtocolConfig.model_fields or path.split(".")[0] == "seeds":
                raise ValueError(f"space key {path!r} is not a protocol setting; expected e.g. optimizer.lr")
        return self


class SlurmConfig(_Strict):
    """``execution.slurm``: how each run's job is submitted (through submitit)."""

    partition: str | None = None
    account: str | None = None
    time_min: int = Field(60, ge=1)  # the job's time limit; a job that reaches it is requeued and resumes
    mem_gb: float | None = Field(None, gt=0)
    array_parallelism: int = Field(16, ge=1)  # runs in flight at once (one job array per study)
    sbatch: dict[str, Any] = Field(default_factory=dict)  # extra sbatch options, e.g. {qos: high, constraint: a100}
    setup: list[str] = Field(default_factory=list)  # lines run before each job: module loads, env activation
    max_requeues: int = Field(3, ge=0)  # time-outs after which a run is given up


class ExecutionConfig(_Strict):
    """Who runs the runs; the results are the same whichever does (not part of a run's hash)."""

    # a registered executor (bakeoff.runs.executor.register_executor: local, ray, slurm, or one of yours),
    # checked with the study (StudyContext.validate), not listed here
    backend: str = Field("local", pattern=r"^[A-Za-z0-9_.:-]+$")
    # local: this many runs at once on this machine, through a local Ray (1: one after another here)
    workers: int = Field(1, ge=1)
    # ray: the cluster to join (None: start a local Ray); each run is a Ray task with these resources
    address: str | None = None
    cpus_per_run: float = Field(1.0, gt=0)
    gpus_per_run: float = Field(0.0, ge=0)  # fractions pack several small runs onto one GPU
    # CPU threads a run's torch uses (None: torch's default when one run is at a time, else cpus_per_run)
    threads_per_run: int | None = Field(None, ge=1)
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)
    keep_checkpoints: bool = True
    # a running run writes its resume checkpoint (weights, optimizer, RNG, selection) at the first epoch end
    # this many seconds after the last one (0: every epoch, as Lightning's default): a kill loses at most
    # this much training, and a fast epoch does not pay a full-state write (resnet18 + Adam: 128 MB, ~0.5 s)
    checkpoint_every_s: float = Field(60.0, ge=0)


class MlflowConfig(_Strict):
    uri: str | None = None  # a tracking server or store; None: sqlite:///DIR/mlflow.db in the study directory
    experiment: str | None = None  # None: the study's name


class TrackingConfig(_Strict):
    """Experiment tracking besides the TensorBoard event files every run writes."""

    mlflow: MlflowConfig | None = None


def check_folder_name(name: str, what: str, folder: str, example: str) -> None:
    """A name that becomes a folder (a contender's runs/NAME/, a suite dataset's datasets/NAME/): a safe path
    component, or a ValueError that says how to rename it."""
    import re

    if not re.fullmatch(SAFE_NAME, name):
        shown = name if len(name) <= 40 else name[:37] + "..."
        raise ValueError(f"{what} name {shown!r} ({len(name)} characters) is not a safe folder name; "
                         f"expected 1-{MAX_NAME} letters, digits, '_', '.', '-', starting with a letter or "
                         f"digit (it names the folder {folder}): rename it, e.g. "
                         f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name).lstrip('._-')[:MAX_NAME] or example!r}")


class StudyConfig(_Strict):
    name: str = Field(pattern=SAFE_NAME)
    task: str = Field("binary_classification", pattern=r"^[A-Za-z0-9_.:-]+$")  # a registered task (bakeoff list tasks)
    data: DataConfig = Field(default_factory=DataConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    contenders: dict[str, ContenderConfig] = Field(min_length=1)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @field_validator("contenders")
    @classmethod
    def _names(cls, v: dict[str, ContenderConfig]) -> dict[str, ContenderConfig]:
        for name in v:  # a contender's name is a folder of the study (runs/NAME/): a safe path component
            check_folder_name(name, "contender", "runs/NAME/", "model_a")
        return v

    @model_validator(mode="after")
    def _cross(self) -> StudyConfig:
        if self.evaluation.baseline is not None and self.evaluation.baseline not in self.contenders:
            raise ValueError(
                f"evaluation.baseline {self.evaluation.baseline!r} is not a contender; "
                f"expected one of {sorted(self.contenders)}"
            )
        for name, c in self.contenders.items():
            try:
                self.protocol_for(name)
            except ValidationError as exc:
                raise ValueError(f"contenders.{name}.protocol: {_first_error(exc)}") from None
            if c.protocol.get("seeds") not in (None, self.protocol.seeds):
                raise ValueError(f"contenders.{name}.protocol.seeds: every contender must use the shared seeds")
            if c.protocol.get("seed_streams") not in (None, self.protocol.seed_streams):
                raise ValueError(f"contenders.{name}.protocol.seed_streams: the verdict's variance rule rests on "
                                 f"one kind of seed streams for every contender; expected it left out here and set "
                                 f"protocol.seed_streams for the whole study")
        return self

    def with_task_defaults(self, primary: str, higher_is_better: Callable[[str], bool],
                           task_settings: dict[str, Any] | None = None) -> StudyConfig:
        """This study with what it leaves to its task filled in: ``primary`` where ``evaluation.primary`` is
        None, selection on ``val/PRIMARY`` where ``protocol.select.monitor`` is None (the task's default, not
        the study's primary: a study that changes its primary keeps its checkpoints), and each selection's
        direction from its metric (``higher_is_better(name)``); the ``evaluation`` section's task keys
        replaced by ``task_settings`` (the task's own settings, checked and complete) when given."""
        raw = self.model_dump(mode="json")
        if task_settings is not None:
            shared = {k: v for k, v in raw["evaluation"].items() if k in EvaluationConfig.model_fields}
            raw["evaluation"] = {**shared, **task_settings}
        raw["evaluation"]["primary"] = raw["evaluation"]["primary"] or primary
        select = raw["protocol"]["select"]
        select["monitor"] = select["monitor"] or f"val/{primary}"
        if select["mode"] is None:
            select["mode"] = "max" if higher_is_better(select["monitor"][4:]) else "min"
        for c in raw["contenders"].values():
            own = (c.get("protocol") or {}).get("select")
            if isinstance(own, dict) and own.get("monitor") and not own.get("mode"):
                own["mode"] = "max" if higher_is_better(own["monitor"][4:]) else "min"
        return StudyConfig.model_validate(raw)

    @property
    def baseline(self) -> str:
        return self.evaluation.baseline or next(iter(self.contenders))

    def protocol_for(self, contender: str, tuned: dict[str, Any] | None = None) -> ProtocolConfig:
        """The shared protocol with this contender's overrides (and tuned values, dotted paths) applied."""
        overrides = self.contenders[contender].protocol
        if not overrides and not tuned:
            return self.protocol
        merged = _deep_merge(self.protocol.model_dump(), overrides)
        for path, value in (tuned or {}).items():
            merged = _deep_merge(merged, unflatten(path, value))
        return ProtocolConfig.model_validate(merged)

    def fingerprint(self) -> str:
        """Hash of the settings every run of the study shares. Execution settings and the evaluation
        (metrics, statistics, verdicts: all recomputed from saved predictions) are left out, so a study
        can be re-evaluated in place without retraining; so are the list of seeds and the contenders, so
        that a study can grow in place (more seeds, another contender): each run's own hash carries its
        seed and its contender (``contender_changes`` names a contender whose definition changed)."""
        shared = self.model_dump(mode="json", exclude={"execution": True, "evaluation": True, "tracking": True,
                                                       "contenders": True, "data": set(DataConfig.LOCAL)})
        shared["protocol"].pop("seeds", None)
        for key in self.protocol._defaults_left_out():
            shared["protocol"].pop(key, None)
        return stable_hash({**shared, "run_evaluation": self.evaluation.run_settings()})

    def contender_changes(self, other: StudyConfig) -> list[str]:
        """Contenders of both studies whose definition (model, params, protocol overrides) differs."""
        return [name for name, c in self.contenders.items()
                if name in other.contenders and c.identity() != other.contenders[name].identity()]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def unflatten(path: str, value: Any) -> dict[str, Any]:
    """``"optimizer.lr", 0.1`` -> ``{"optimizer": {"lr": 0.1}}``."""
    out: dict[str, Any] = value
    for part in reversed(path.split(".")):
        out = {part: out}
    return out


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _first_error(exc: ValidationError) -> str:
    return _error_parts(exc, root=ProtocolConfig)[0]


class DuplicateKey(Exception):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(key)
        self.key, self.line, self.first = key, line, first


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no object construction from tags), refusing a key given twice in one mapping
    (plain YAML keeps the last silently: two contenders with one name, or a protocol key twice)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKey(str(key), line, seen[key])
            seen[key] = line
        return super().construct_mapping(node, deep)


def read_yaml(text: str, where: str) -> Any:
    """Parse a study file's text safely; a syntax error or a duplicate key is one line naming the place."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as exc:
        raise BakeoffError(f"{where}: line {exc.line}: key {exc.key!r} is given twice in one section (first on "
                           f"line {exc.first}); expected each key once: remove or rename one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}:" if mark else ""
        problem = str(getattr(exc, "problem", exc))
        if "'\\t'" in problem or "\t" in problem:
            raise BakeoffError(f"{where}:{at} a tab indents this line; expected spaces (YAML does not allow tabs for "
                               f"indentation): replace each tab with two spaces") from None
        if "another document" in problem:
            raise BakeoffError(f"{where}:{at} a second YAML document starts here ('---'); expected one study per "
                               f"file: put the other study in a file of its own") from None
        raise BakeoffError(f"{where}:{at} not valid YAML ({problem}); expected a YAML mapping of the study's "
                           f"sections (name, task, data, protocol, contenders, evaluation): see examples/") from None


def _model_at(loc: list[str], root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The schema section that holds the last key of ``loc`` (contender names and dict keys skipped)."""
    import typing

    model: Any = root or StudyConfig
    i = 0
    while i < len(loc) - 1:
        field = model.model_fields.get(loc[i]) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        ann = field.annotation
        is_union = typing.get_origin(ann) in (typing.Union, getattr(__import__("types"), "UnionType", None))
        args = [a for a in typing.get_args(ann) if a is not type(None)] if is_union else [ann]
        nxt = None
        for a in args:
            if isinstance(a, type) and issubclass(a, BaseModel):
                nxt = a
                break
            if typing.get_origin(a) is dict:  # contenders: {name: ContenderConfig}: skip the name
                val = typing.get_args(a)[1]
                if isinstance(val, type) and issubclass(val, BaseModel):
                    nxt = val
                    i += 1
                    break
        if nxt is None:
            return None
        model = nxt
        i += 1
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _suggest(loc: list[str], root: type[BaseModel] | None = None) -> str:
    import difflib

    model = _model_at(loc, root)
    if model is None or not loc:
        return ""
    fields = list(model.model_fields)
    close = difflib.get_close_matches(loc[-1], fields, n=1, cutoff=0.6)
    if close:
        return f"; expected one of the section's keys: did you mean {close[0]!r}?"
    return f"; expected one of {', '.join(fields)}"


def format_validation_error(exc: ValidationError, source: str | None = None,
                            overrides: list[str] | None = None, root: type[BaseModel] | None = None) -> str:
    """One line per study: ``file: key.path: message (got VALUE)`` for each problem, joined by '; '. A
    problem at a key that a ``--set`` gave is blamed on that ``--set``, not on the file."""
    return "; ".join(_error_parts(exc, source, overrides, root))


def _error_parts(exc: ValidationError, source: str | None = None, overrides: list[str] | None = None,
                 root: type[BaseModel] | None = None) -> list[str]:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        loc = _strip_union_tags(loc)
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key" + _suggest(loc.split("."), root)
        elif err["type"] == "value_error":  # our validators' own words, without pydantic's prefix
            msg = msg.removeprefix("Value error, ")
        elif err["type"] == "missing":
            msg = "required key is missing; expected it in the study file"
        else:
            msg = _expected_words(err)
        got = err.get("input")
        show_got = err["type"] not in ("extra_forbidden", "missing") and not isinstance(got, dict)
        text = f"{loc}: {msg}" if loc else msg
        if show_got:
            text += f" (got {got!r})"
        keys = [(o, o.split("=", 1)[0].strip()) for o in overrides or []]
        given = [o for o, k in keys if loc and (loc == k or loc.startswith(k + ".") or k.startswith(loc + "."))]
        if given:
            text = f"--set {given[-1]!r}: {text}"
        elif source:
            text = f"{source}: {text}"
        parts.append(text)
    return list(dict.fromkeys(parts))


def _expected_words(err: Any) -> str:
    """pydantic's "Input should be X" as "expected X", so that every message says what was expected."""
    import re

    ctx = err.get("ctx") or {}
    if err["type"] == "string_pattern_mismatch":
        if ctx.get("pattern") == SAFE_NAME:
            return (f"expected 1-{MAX_NAME} letters, digits, '_', '.', '-', starting with a letter or digit (it names "
                    f"files and folders)")
        return f"expected text matching {ctx.get('pattern')!r}"
    if err["type"] == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length')}"
    msg = err["msg"]
    return re.sub(r"^(Input|String|Value|Dictionary|List) should (be |have )?", "expected ", msg) \
        if re.match(r"^(Input|String|Value|Dictionary|List) should", msg) else f"{msg}; expected a valid value"


def _strip_union_tags(loc: str) -> str:
    # pydantic names union members in the location ("class_weights.list[float]"); users never wrote those.
    tags = {"int", "float", "str", "bool", "none"}
    return ".".join(p for p in loc.split(".") if "[" not in p and p not in tags)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings (value parsed as YAML) to a raw study dict."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise BakeoffError(f"--set {item!r}: expected KEY.PATH=VALUE, e.g. protocol.epochs=5")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise BakeoffError(f"--set {item!r}: expected KEY.PATH=VALUE with a key before '=', e.g. protocol.epochs=5")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                at = ".".join(parts[:parts.index(part) + 1])
                raise BakeoffError(f"--set {item!r}: {part!r} is not a section (it holds the value "
                                   f"{node.get(part)!r}); expected KEY.PATH to end at it: --set {at}=VALUE")
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def load_study(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    """Read, override and validate a study file; every problem is a one-line ``BakeoffError``."""
    path = Path(path)
    if not path.is_file():
        raise BakeoffError(f"{path}: study file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM (Windows editors) is not part of the YAML
    except (OSError, UnicodeDecodeError) as exc:
        raise BakeoffError(f"{path}: cannot be read as UTF-8 text ({exc}); expected a YAML study file") from None
    raw = read_yaml(text, str(path))
    if not isinstance(raw, dict):
        raise BakeoffError(f"{path}: expected a mapping with keys name, task, data, protocol, contenders, ...")
    raw = apply_overrides(raw, overrides or [])
    return validate_study(raw, source=str(path), base_dir=path.parent, overrides=overrides)


def validate_study(raw: dict[str, Any], source: str = "study", base_dir: Path | None = None,
                   overrides: list[str] | None = None) -> StudyConfig:
    raw = copy.deepcopy(raw)
    src = raw.get("data", {}).get("source") if isinstance(raw.get("data"), dict) else None
    kind, _, rest = src.partition(":") if isinstance(src, str) else ("", "", "")
    if base_dir is not None and kind in ("npz", "npz_dir", "tiff_dir", "csv", "folder"):
        p = Path(rest).expanduser()
        if not p.is_absolute():
            raw["data"]["source"] = f"{kind}:{(base_dir / p).resolve()}"
    cache = raw.get("data", {}).get("cache_dir") if isinstance(raw.get("data"), dict) else None
    if base_dir is not None and isinstance(cache, str) and not Path(cache).expanduser().is_absolute():
        raw["data"]["cache_dir"] = str((base_dir / Path(cache).expanduser()).resolve())  # as the source: beside the file
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        raise BakeoffError(format_validation_error(exc, source, overrides)) from None
