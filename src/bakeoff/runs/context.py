"""The plan: every run of a study with a content hash, and the context every run shares."""

from __future__ import annotations

import time
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from bakeoff.config import ProtocolConfig, StudyConfig
from bakeoff.data.cache import CACHE_DIR, attach_cache, decoded_info, pixels_ready
from bakeoff.data.segdata import SegData
from bakeoff.data.sources import ArrayData
from bakeoff.data.splits import Split, exact_duplicates, group_overlap, make_splits
from bakeoff.errors import BakeoffError
from bakeoff.models import resolve
from bakeoff.runs.backends import executor_spec, executors
from bakeoff.runs.spec import RunSpec, run_hash
from bakeoff.tasks import Task, task_class


def check_device(protocol: ProtocolConfig, where: str = "protocol") -> None:
    """Refuse before training what Lightning would refuse after the data are loaded."""
    import torch

    cuda = torch.cuda.is_available()
    if protocol.accelerator in ("gpu", "cuda") and not cuda:
        raise BakeoffError(f"{where}.accelerator: {protocol.accelerator!r} requested but no CUDA device is "
                           f"visible; expected 'auto' or 'cpu' on this machine")
    if protocol.accelerator == "mps" and not torch.backends.mps.is_available():
        raise BakeoffError(f"{where}.accelerator: 'mps' (Apple GPUs) requested but this machine has none; "
                           f"expected 'auto' or 'cpu' here")
    on_cpu = protocol.accelerator == "cpu" or (protocol.accelerator == "auto" and not cuda)
    if protocol.precision == "16-mixed" and on_cpu:
        raise BakeoffError(f"{where}.precision: '16-mixed' needs a GPU; expected '32-true' or 'bf16-mixed' on CPU")
    if isinstance(protocol.devices, int) and protocol.devices > 1 and not on_cpu \
            and torch.cuda.device_count() < protocol.devices:
        raise BakeoffError(f"{where}.devices: {protocol.devices} GPUs per run requested but "
                           f"{torch.cuda.device_count()} are visible; expected at most that many")


class StudyContext:
    """A validated study with its data loaded, normalised and split, and its task; no training yet."""

    def __init__(self, config: StudyConfig, data: ArrayData | None = None, loaded: bool = False) -> None:
        """``data``: the study's data given directly (``loaded``: already loaded, checked and normalised,
        as an executor ships a context's data to its workers) instead of read from ``config.data``."""
        self.config = config
        self._data = data
        if loaded and data is not None:
            self.__dict__["data"] = data  # the cached property, filled
        self.tuned: dict[str, dict[str, Any]] = {}  # contender -> best setting from equal-budget tuning
        self.forward_s: dict[str, float] = {}  # contender -> forward time per input, timed in the check (for ETAs)
        self._validated = False
        self.cache_root: Path | None = None  # where image files are decoded to (use_cache); None: not yet

    def use_cache(self, out: str | Path) -> None:
        """Image files are decoded once into ``data.cache_dir`` (or OUT/cache) and every run reads them there.
        Called once the output directory is open (nothing is written before); checks that needed the
        pixels and were put off until then (``pixels_deferred``) are made again when next asked."""
        cfg = self.config.data
        self.cache_root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else Path(out) / CACHE_DIR
        if "data" in self.__dict__:
            attach_cache(self.data, self.cache_root)
            self.__dict__.pop("data_checks", None)

    def pixels_deferred(self) -> bool:
        """Whether the pixel checks (duplicates across parts) wait for the decode: image files with no cache
        folder yet (``bakeoff check``, a study planned in Python without an output directory)."""
        return not pixels_ready(self.data)

    def protocol(self, contender: str) -> ProtocolConfig:
        """The protocol a contender's runs use: shared, its declared overrides, then its tuned values."""
        return self.config.protocol_for(contender, self.tuned.get(contender))

    @cached_property
    def strategy(self) -> Any:
        """How this study's runs train and predict (``train.strategy``, chosen from the task)."""
        from bakeoff.train.strategy import strategy_for  # (torch and Lightning only when a study is checked)

        return strategy_for(self.task)

    @cached_property
    def task_class(self) -> type[Task]:
        return task_class(self.config.task)

    @cached_property
    def data(self) -> ArrayData | SegData:
        data = self.task_class.load_data(self.config.data, self._data)
        if self.cache_root is not None:
            attach_cache(data, self.cache_root)
        return data

    @cached_property
    def task(self) -> Task:
        return self.task_class.for_data(self.data, self.config.evaluation)

    @cached_property
    def splits(self) -> list[Split]:
        splits = make_splits(self.data, self.config.data.split, by_class=self.task_class.stratify_by_label)
        leaky = group_overlap(self.data, splits[0])
        if leaky:
            warnings.warn(
                f"{len(leaky)} groups appear in more than one of train/val/test (data.split.grouped is off); "
                "splitting one group across parts inflates results", stacklevel=2)
        return splits

    def validate_names(self) -> None:
        """What the study file alone can get wrong, checked before any data are read: built-in model and
        loss names and metric names (``bakeoff.tasks.names``, without torch), then other providers' model
        names and the executor."""
        from bakeoff.tasks.names import check_names

        check_names(self.config)
        for name, c in self.config.contenders.items():
            try:
                resolve(c.model)
            except BakeoffError as exc:
                raise BakeoffError(f"contenders.{name}.model: {exc}") from None
        executor_spec(self.config.execution.backend)

    def validate(self) -> None:
        """Everything that can fail before training: the names first (no data read), then data, splits,
        leakage, each contender built and checked. Once per context: its study does not change (the
        ``bakeoff run`` command plans before it opens the output directory, which plans again)."""
        if self._validated:
            return
        self.validate_names()
        _ = self.task  # the classes the data hold fit the task (before a split complains about them)
        if not self.pixels_deferred():
            _ = self.data_checks
        ev = self.config.evaluation
        for i, ref in enumerate(ev.metrics):
            from bakeoff.tasks.metric import load_user_metrics

            m = load_user_metrics([ref])[0]
            if self.config.task not in m.tasks:
                raise BakeoffError(f"evaluation.metrics[{i}]: {ref} is a metric for {list(m.tasks)}, not for "
                                   f"{self.config.task}; expected one registered with tasks=[{self.config.task!r}]")
        self.task.check_metric(ev.primary, "evaluation.primary")
        for name in self.config.contenders:
            p = self.config.protocol_for(name)
            where = "protocol" if not self.config.contenders[name].protocol else f"contenders.{name}.protocol"
            self.task.check_metric(p.select.monitor.split("/", 1)[1], f"{where}.select.monitor")
            if p.early_stopping and p.early_stopping.monitor:
                m = p.early_stopping.monitor
                if not m.startswith("val/"):
                    raise BakeoffError(f"{where}.early_stopping.monitor: expected 'val/<metric>', got {m!r}")
                self.task.check_metric(m.split("/", 1)[1], f"{where}.early_stopping.monitor")
            resolve(self.config.contenders[name].model)
            ex = self.config.execution
            runner = executor_spec(ex.backend)
            if runner.trains_here(ex):  # a device this machine lacks is an error here, not on a cluster
                check_device(p, where)
            if p.num_nodes > 1 and not runner.multi_node:
                able = sorted(n for n, e in executors().items() if e.multi_node)
                raise BakeoffError(f"{where}.num_nodes: {p.num_nodes} nodes per run need SLURM to start the "
                                   f"processes; expected execution.backend: {' or '.join(able)}, or num_nodes: 1 "
                                   f"with execution.backend {ex.backend!r}")
            self._check_task_settings(p, where)
            self._check_builds(name)
            if self.config.contenders[name].feature_layer:
                self._check_feature_layer(name)
        self._validated = True

    def input_shape(self, contender: str, fold: int = 0, protocol: ProtocolConfig | None = None) -> tuple[int, ...]:
        """What the network sees: the training patch size for dense tasks, else the sample shape."""
        return self.strategy.input_shape(self.task, self.data, protocol or self.protocol(contender),
                                          self.splits[fold].train)

    def build_model(self, contender: str, protocol: ProtocolConfig | None = None, fold: int = 0) -> Any:
        """The contender's network for this study's data and task; with the cumulative-link loss, a
        one-score network under an ordinal head (its outputs are log class probabilities)."""
        from bakeoff.models import create_model

        c = self.config.contenders[contender]
        protocol = protocol or self.protocol(contender)
        ordinal_head = protocol.loss.name == "cumulative_link"
        net = create_model(c.model, in_channels=self.data.in_channels,
                           num_outputs=1 if ordinal_head else self.task.num_outputs,
                           spatial_dims=self.data.spatial_dims, input_shape=self.input_shape(contender, fold, protocol),
                           params=c.params)
        if ordinal_head:
            from bakeoff.losses import CumulativeLinkHead

            net = CumulativeLinkHead(net, self.task.num_classes)
        return net

    def _check_builds(self, name: str) -> None:
        """Build the contender once on the CPU and run one dummy input of the data's shape through it, so
        that a parameter typo or a shape the network cannot take is one error before any training."""
        import torch

        c = self.config.contenders[name]
        shape = (1, self.data.in_channels, *self.input_shape(name))
        try:
            net = self.build_model(name)
        except BakeoffError as exc:
            raise BakeoffError(f"contenders.{name}: {exc}") from None
        state = torch.random.get_rng_state()
        try:
            net.eval()
            with torch.no_grad():
                out = net(torch.zeros(shape))
                self.forward_s[name] = self._time_forward(net, shape, self.protocol(name).batch_size)
        except Exception as exc:  # noqa: BLE001 - whatever the network raises, named and in one line
            raise BakeoffError(f"contenders.{name}: {c.model} cannot take inputs of shape {list(shape)} "
                               f"(batch, channels, *{self.strategy.unit}): {type(exc).__name__}: "
                               f"{' '.join(str(exc).split())[:300]}; expected a network that takes this input: fix "
                               f"its params or protocol.patch_size / data.image_size") from None
        finally:
            torch.random.set_rng_state(state)
        expected = self.task.num_classes if self.protocol(name).loss.name == "cumulative_link" \
            else self.task.num_outputs
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else None
        want, fits = self.strategy.output_shape(tuple(shape), expected)
        if not fits(got):
            raise BakeoffError(f"contenders.{name}: {c.model} gives outputs of shape "
                               f"{None if got is None else list(got)} for one input of shape {list(shape)}; "
                               f"expected {want}")

    @staticmethod
    def _time_forward(net: Any, shape: tuple[int, ...], batch_size: int, budget_s: float = 0.25) -> float:
        """Seconds per input of a warm forward pass, the contender's relative cost for the progress ETA: at
        the training batch size, or at as many inputs as fit ``budget_s`` at one input's pace. Per-input time
        depends on the batch: the demo's 18k-parameter CNN takes 1/18 of the SE-ResNet3D's time at batch 1
        and 1/28 at batch 32, as in training; timm's MobileNetV3 is slower than ResNet10t at batch 1 and
        faster at 64, as in training."""
        import torch

        t0 = time.perf_counter()
        net(torch.zeros(shape))
        one = time.perf_counter() - t0
        n = max(1, min(batch_size, int(budget_s / max(one, 1e-9))))  # as close to the batch size as is cheap
        if n == 1:
            return one
        batch = torch.zeros((n, *shape[1:]))
        try:
            net(batch)  # warm at this shape
            t0 = time.perf_counter()
            net(batch)
        except Exception:  # noqa: BLE001 - a figure for the ETA, never the check's error: training will say it
            return one
        return (time.perf_counter() - t0) / n

    def _check_feature_layer(self, name: str) -> None:
        """Build the network once (CPU) to check that the named layer exists."""
        c = self.config.contenders[name]
        where = f"contenders.{name}.feature_layer"
        if not self.task.saves_feature_maps:
            raise BakeoffError(f"{where}: feature maps are drawn for segmentation and particle picking only; "
                               f"expected no feature_layer for {self.config.task}")
        net = self.build_model(name)
        names = [n for n, _ in net.named_modules() if n]
        if c.feature_layer not in names:
            import difflib

            close = difflib.get_close_matches(c.feature_layer, names, n=3) or names[:5]
            raise BakeoffError(f"{where}: {c.feature_layer!r} is not a module of {c.model}; expected a name "
                               f"from model.named_modules(), e.g. {close}")

    def _check_task_settings(self, p: ProtocolConfig, where: str) -> None:
        """Settings that only make sense for one kind of task, refused before any training; the loss is
        built once (registry lookup, the task it fits, its params) on the training split's targets."""
        from bakeoff.losses import build_loss

        try:
            build_loss(p.loss, self.task, *self.task.loss_probe(self.data))
        except BakeoffError as exc:
            raise BakeoffError(str(exc).replace("protocol.loss", f"{where}.loss", 1)) from None
        self.strategy.check_protocol(self.task, self.data, p, where)  # what its way of training cannot do

    @cached_property
    def data_checks(self) -> dict[str, Any]:
        """Leakage checks across the parts of every split: identical pixel data, shared groups."""
        dups = [d for s in self.splits for d in exact_duplicates(self.data, s)]
        overlap = sorted({str(g) for s in self.splits for g in group_overlap(self.data, s)})
        checks = {"exact_duplicates": dups, "groups_across_parts": overlap,
                  "grouped_split": bool(self.config.data.split.grouped and self.data.groups is not None),
                  "data_fingerprint": self.data_fingerprint, "n_samples": int(len(self.data.ids))}
        checks.update(self.task.data_checks(self.data, self.splits))
        decoded = decoded_info(self.data)
        if decoded:
            checks["decoded"] = decoded
        if dups:
            first = dups[0]
            msg = (f"data: {len(dups)} samples have a pixel-identical twin in another part of the split (first: "
                   f"{first['id']} in {first['part']} = {first['duplicate_of']} in {first['duplicate_part']})")
            if not self.config.data.allow_duplicates:
                raise BakeoffError(msg + "; expected each image in one part only: remove the copies, group them "
                                         "(a group column), or set data.allow_duplicates: true to keep them (the "
                                         "report then lists them)")
            warnings.warn(msg + " (data.allow_duplicates is on); results may be inflated", stacklevel=2)
        return checks

    def split_fingerprints(self) -> list[dict[str, str]]:
        return [s.fingerprints(self.data.ids) for s in self.splits]

    @cached_property
    def data_fingerprint(self) -> str:
        """Hash of the sample ids, labels and pixels: equal fingerprints mean the same data."""
        return self.data.fingerprint()

    def _run_hash(self, contender: str, split: Split, seed: int, protocol: dict[str, Any]) -> str:
        return run_hash(data=self.data_fingerprint, split=split.fingerprints(self.data.ids),
                        contender=self.config.contenders[contender].identity(), seed=seed, task=self.config.task,
                        data_cfg=self.config.data.identity(), protocol=protocol,
                        evaluation=self.config.evaluation.run_settings())

    def plan(self) -> list[RunSpec]:
        """Every contender x fold x seed with its hash: what shapes that one run (its data, split, contender,
        seed and settings), not the seeds or contenders beside it, so a study grows in place."""
        runs = []
        for name in self.config.contenders:
            protocol = self.protocol(name)
            for split in self.splits:
                for seed in protocol.seeds:
                    h = self._run_hash(name, split, seed, protocol.run_settings())
                    runs.append(RunSpec(name, seed, split.fold, h, protocol.model_dump(mode="json"),
                                        forward_s=self.forward_s.get(name)))
        return runs

    def earlier_hash(self, run: RunSpec, seeds: list[int]) -> str:
        """The hash ``run`` had when a run's hash held the study's whole list of seeds (``seeds``, as its
        run.json records them): how runs finished before studies could grow are recognised."""
        protocol = {**run.resolved_protocol().run_settings(), "seeds": seeds}
        return self._run_hash(run.contender, self.splits[run.fold], run.seed, protocol)

    def class_counts(self, idx: np.ndarray) -> list[int]:
        """Samples per class, or pixels per class for dense tasks."""
        return self.task.class_counts(self.data, idx)
