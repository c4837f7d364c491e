"""One planned run: (contender, seed, fold) and the hash of everything it depends on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunSpec:
    contender: str
    seed: int
    fold: int
    hash: str

    @property
    def run_id(self) -> str:
        return f"seed{self.seed}-fold{self.fold}"

    @property
    def key(self) -> str:
        return f"{self.contender}/{self.run_id}"
