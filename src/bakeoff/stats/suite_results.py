"""``suite.json`` as types: the answer across a suite's datasets (``stats.meta.suite_comparison``) and the
summaries beside it (``stats.aggregate.suite_summaries``), as ``stats.results`` declares comparison.json.

``stats.study.suite_result`` validates every suite result it builds against ``Suite`` (an undeclared,
missing or mistyped key at any depth fails), and ``docs/schemas/suite.schema.json`` is generated from these
types (``json_schema``; a test keeps it current). Keys that are names (datasets, contenders, aggregations)
are typed as mappings of those names; the overrides a suite file gives a dataset are its own settings, so
JSON (``JsonValue``).
"""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue, TypeAdapter
from typing_extensions import NotRequired, TypedDict

from bakeoff.stats.results import _CLOSED, published_schema


class DatasetDifference(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    name: str
    difference: float
    se: float


class DatasetVerdict(TypedDict):
    """A dataset's own verdict on the pair (its comparison.json)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    verdict: str
    difference: float
    ci_low: float | None
    ci_high: float | None


class Wins(TypedDict):
    """How many datasets' own verdicts say A better, B better, equivalent, inconclusive."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    a: int
    b: int
    equivalent: int
    inconclusive: int


class SuitePair(TypedDict):
    """One pair across the datasets (``stats.meta.across_datasets``, then Holm over the pairs)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    a: str
    b: str
    k: int
    method: str
    higher_is_better: bool
    min_effect: float
    alpha: float
    datasets: list[DatasetDifference]
    notes: list[str]
    difference: float
    verdict: str
    prediction_interval: list[float] | None
    tau2: float | None
    i2: float | None
    se: NotRequired[float]  # (with 2 or more datasets, as everything down to ci_equivalence)
    df: NotRequired[float]
    ci_low: NotRequired[float]
    ci_high: NotRequired[float]
    p_value: NotRequired[float]
    p_margin: NotRequired[float]
    p_equivalence: NotRequired[float]
    ci_equivalence: NotRequired[list[float] | None]
    tau: NotRequired[float | None]
    q: NotRequired[float | None]
    p_value_holm: NotRequired[float]
    p_equivalence_holm: NotRequired[float]
    reference_scores: NotRequired[dict[str, float]]  # normalise: relative: each dataset's divisor
    per_dataset: dict[str, DatasetVerdict]
    wins: Wins


class MissingPair(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    a: str
    b: str
    missing_in: list[str]


class MeanRanks(TypedDict):
    """``stats.aggregate.mean_ranks``: ranks per dataset, their mean, pairwise Wilcoxon with Holm."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    n_datasets: int
    average_ranks: dict[str, float]
    ranks: dict[str, dict[str, float]]  # dataset -> contender -> rank
    test: str
    alpha: float
    p_holm: dict[str, dict[str, float | None]]  # None: too few datasets that differ to run the test
    note: str


class ValueInterval(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    value: float
    ci: list[float]


class Improvement(TypedDict):
    """P(a's run scores above b's run), averaged over datasets, with its interval."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    a: str
    b: str
    value: float
    ci: list[float]


class Profiles(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    thresholds: list[float]
    fraction_above: dict[str, list[float]]


class Estimates(TypedDict):
    """``stats.aggregate.interval_estimates``: IQM, mean, probability of improvement, profiles."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    reps: int
    level: float
    oriented: str
    iqm: dict[str, ValueInterval]
    mean: dict[str, ValueInterval]
    probability_of_improvement: dict[str, Improvement]  # "a > b" -> its estimate
    profiles: Profiles


class Robustness(TypedDict):
    """``stats.aggregate.ranking_robustness``: the ranking under five aggregations and their agreement."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    rankings: dict[str, dict[str, float]]  # aggregation -> contender -> rank
    kendall_tau: dict[str, dict[str, float | None]]
    winners: dict[str, list[str]]
    warning: str
    first_under_every_choice: list[str]
    references: str


class Summaries(TypedDict):
    """``stats.aggregate.suite_summaries``; without a dataset that scores every contender, only the note."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    metric: str
    higher_is_better: bool
    scores: dict[str, dict[str, float]]  # dataset -> contender -> mean over its runs
    normalisation: str
    note: NotRequired[str]
    ranks: NotRequired[MeanRanks]
    estimates: NotRequired[Estimates]
    robustness: NotRequired[Robustness]


class Cost(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    runs: int
    train_time_s: dict[str, float]  # contender -> seconds over every dataset
    total_train_time_s: float


class Suite(TypedDict):
    """``suite.json``: the answer across the datasets and what it rests on."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    name: str
    datasets: list[str]
    primary: str
    primaries: dict[str, str]  # dataset -> its primary metric
    alpha: float
    method: str
    normalisation: str
    multiple_testing: str
    pairs: list[SuitePair]
    pairs_not_in_every_dataset: list[MissingPair]
    summaries: Summaries
    overrides: dict[str, dict[str, JsonValue]]  # dataset -> its own protocol / evaluation settings
    reports: dict[str, str]  # dataset -> its report, relative to the suite directory
    cost: Cost


_SUITE = TypeAdapter(Suite)


def validate(suite: dict[str, Any]) -> Suite:
    """``suite`` checked against the declared types (pydantic); raises ``ValidationError`` naming the key."""
    return _SUITE.validate_python(suite, strict=False)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of suite.json, generated from these types (docs/schemas/suite.schema.json)."""
    return published_schema(_SUITE, "bakeoff suite.json")


if __name__ == "__main__":  # python -m bakeoff.stats.suite_results > docs/schemas/suite.schema.json
    import json

    print(json.dumps(json_schema(), indent=1, sort_keys=True))
