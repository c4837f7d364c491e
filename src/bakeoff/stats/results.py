"""The statistics' results as types: what ``comparison.json`` holds at its top level and for each pair.

They are ``TypedDict``s, not classes with behaviour: the results are built in ``bakeoff.stats`` and
serialised to JSON as they are, the report and the CLI read them by key, and these declarations say which
keys exist, what each holds and which may be absent (``NotRequired``). A test validates every comparison a
study writes against them with pydantic (``validate``): an undeclared key, a missing one or a value of the
wrong type fails it, so a new statistic is declared here before it is written. Nested records that their
own modules define (the design model, the fairness audit, rank stability, ...) are typed as mappings here.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, TypeAdapter
from typing_extensions import NotRequired, TypedDict  # (pydantic reads typing_extensions' on Python < 3.12)

_CLOSED = ConfigDict(extra="forbid")


class OwnInterval(TypedDict):
    """One contender's own score on the primary metric: mean over runs and its interval."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    mean: float
    ci_low: float | None
    ci_high: float | None
    ci_level: float
    df: float | None
    interval_method: str
    method: NotRequired[str]  # (in comparison["contenders"]: the pair's interval method)


class PairResult(TypedDict):
    """The verdict record of contender ``a`` against ``b`` (``compare.pair_result``, then ``adjust_pairs``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    a: str
    b: str
    metric: str
    higher_is_better: bool
    difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    p_value: float
    p_margin: float
    p_equivalence: float
    ci_equivalence: list[float] | None
    df: float
    se: float
    test: str
    equivalence_test: str
    min_effect: float
    n_runs: int
    n_test_samples: int
    unit: str
    design: dict[str, Any]  # test_sets, components, variance_shares, notes (stats.design)
    contenders: dict[str, OwnInterval]
    scope: str  # "training recipe" or "trained weights"
    scope_text: str
    verdict: str
    per_run: list[dict[str, Any]]  # the task's per-run tests (stats.paired), by (seed, fold)
    across_runs: NotRequired[dict[str, Any]]  # tests over independent test sets
    p_floor: NotRequired[float]
    degenerate: NotRequired[str]
    seed_sd: NotRequired[float]
    p_value_holm: NotRequired[float]
    p_equivalence_holm: NotRequired[float]
    unreachable: NotRequired[str]
    to_resolve: NotRequired[dict[str, Any]]  # what would decide an inconclusive pair (stats.plan)
    sequential_alpha: NotRequired[float]


class Comparison(TypedDict):
    """``comparison.json``: the study's verdicts and everything computed beside them."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    primary: str
    baseline: str
    alpha: float
    min_effect: float
    threshold: float
    pairs: list[PairResult]
    note: NotRequired[str]  # why the primary metric gets no paired verdicts
    multiple_testing: NotRequired[dict[str, str]]
    contenders: NotRequired[dict[str, OwnInterval]]
    fairness: dict[str, Any]  # stats.audit
    ranking: NotRequired[dict[str, Any] | None]  # Friedman / Nemenyi (stats.ranks)
    rank_stability: NotRequired[dict[str, Any]]  # stats.rank_stability
    significance_map: NotRequired[dict[str, Any]]
    calibration: NotRequired[dict[str, Any]]  # ECE and reliability curves (stats.summary)
    sequential: NotRequired[dict[str, Any]]  # the looks of a sequential study (stats.sequential)
    incomplete: NotRequired[dict[str, Any]]  # an unfinished study: runs not done yet (report.build.incomplete)
    health: NotRequired[dict[str, str]]  # runs whose test predictions collapsed to one class (Task.health)


_COMPARISON = TypeAdapter(Comparison)


def validate(comparison: dict[str, Any]) -> Comparison:
    """``comparison`` checked against the declared types (pydantic); raises ``ValidationError`` naming the
    key when it holds an undeclared key, lacks a required one or a value of another type."""
    return _COMPARISON.validate_python(comparison, strict=False)
