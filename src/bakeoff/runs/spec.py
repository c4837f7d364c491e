"""One planned run: (contender, seed, fold), the resolved protocol it trains with, and the hash of
everything it depends on. It pickles, so an executor can ship it to another process and run it there
with ``execute_run`` and a context rebuilt from the study directory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bakeoff.utils import stable_hash


def run_hash(*, data: str, split: dict[str, str], contender: dict[str, Any], seed: int | None = None,
             **model_source: Any) -> str:
    """The one recipe for a run's identity: the data and split fingerprints, the contender, the seed, and
    where the model comes from: ``task, data_cfg, protocol, evaluation`` for a trained run, ``checkpoint``
    (its SHA-256) for one ``bakeoff evaluate`` scores. Any change to these makes it a different run."""
    key: dict[str, Any] = {"data": data, "split": split, "contender": contender, **model_source}
    if seed is not None:
        key["seed"] = seed
    return stable_hash(key)


@dataclass(frozen=True)
class RunSpec:
    contender: str
    seed: int
    fold: int
    hash: str
    # the protocol after the study's shared settings, the contender's overrides and its tuned values
    protocol: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)
    # seconds per input of a warm forward pass (at the training batch size where cheap), timed when the contender
    # was checked before training: what the progress ETA scales a timed contender's runs by for one not timed yet
    forward_s: float | None = field(default=None, compare=False, hash=False, repr=False)

    @property
    def run_id(self) -> str:
        return f"seed{self.seed}-fold{self.fold}"

    @property
    def key(self) -> str:
        return f"{self.contender}/{self.run_id}"

    def resolved_protocol(self) -> Any:
        from bakeoff.config import ProtocolConfig

        if self.protocol is None:
            raise ValueError(f"run {self.key} carries no protocol")
        return ProtocolConfig.model_validate(self.protocol)

    def cost(self) -> float | None:
        """The run's training work up to a factor shared by the study's runs: forward time per input x epochs
        (None when either is unknown). Measured, not FLOPs: a tiny network's step is mostly per-layer overhead
        (the zms2 CNN has 1/385 of the SE-ResNet3D's FLOPs but trains 1/28 as long)."""
        epochs = (self.protocol or {}).get("epochs")
        return self.forward_s * epochs if self.forward_s and isinstance(epochs, int) and epochs > 0 else None

    def to_json(self) -> dict[str, Any]:
        out = {"contender": self.contender, "seed": self.seed, "fold": self.fold, "hash": self.hash,
               "protocol": self.protocol}
        return out if self.forward_s is None else {**out, "forward_s": self.forward_s}
