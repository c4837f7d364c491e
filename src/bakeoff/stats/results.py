"""The statistics' results as types: what ``comparison.json`` holds at its top level and for each pair.

They are ``TypedDict``s, not classes with behaviour: the results are built in ``bakeoff.stats`` and
serialised to JSON as they are, the report and the CLI read them by key, and these declarations say which
keys exist, what each holds and which may be absent (``NotRequired``). A test validates every comparison a
study writes against them with pydantic (``validate``): an undeclared key, a missing one or a value of the
wrong type fails it, so a new statistic is declared here before it is written. ``study_result`` validates
every comparison it builds, and ``docs/schemas/comparison.schema.json`` is generated from these types
(``json_schema``; a test keeps it current) for tools that read the file. Where a record's keys are not
fixed by bakeoff (a study's settings in the fairness audit, a task's per-run tests, the data checks'
findings), the values are typed as JSON (``JsonValue``), not as anything at all.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, JsonValue, TypeAdapter
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


class ComponentGroup(TypedDict):
    """One test set's variance components, per run, in the metric's units (``design.Estimate.components``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    folds: list[int]
    runs: int
    test_units: int
    tau2: float | None  # training-run variance (None with one run)
    shared: float  # covariance of the runs' sampling errors (test units every run shares)
    churn: float  # per-run sampling variance not shared between runs
    run_var: float | None
    run_var_floor: float | None
    side_share: float | None  # pooled over the two contenders: A's share of run_var


class Components(TypedDict):
    """What ``bakeoff plan`` needs to predict other designs."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    design: str
    pooled_over_folds: bool
    seeds_across_folds: bool
    fold_spread: float | None
    df: float
    groups: list[ComponentGroup]


class VarianceShares(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    training_runs: float
    test_units: float
    interaction: float


class Design(TypedDict):
    """The design model behind a pair's interval (``stats.design``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    test_sets: str  # single, shared, disjoint, overlapping, "disjoint, seeds shared"
    components: Components
    variance_shares: VarianceShares | None
    notes: list[str]


class Interval(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    ci_low: float | None
    ci_high: float | None
    note: NotRequired[str]
    method: NotRequired[str]
    level: NotRequired[float]


class AcrossRuns(TypedDict):
    """Tests that treat independent test sets as replicates (``compare.across_runs``); reported only."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    differences: list[float]
    replicates: str
    bca: dict[str, JsonValue]
    correlated_ttest: dict[str, JsonValue]
    wilcoxon: dict[str, JsonValue]
    aso: NotRequired[dict[str, JsonValue]]
    note: NotRequired[str]


class RequiredSize(TypedDict):
    """What would decide an inconclusive pair (``design.required_size``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    power: float
    seeds: int | None
    test_units: int | None
    note: NotRequired[str]
    seeds_for_a_plan: NotRequired[int]
    test_units_scope: NotRequired[str]


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
    design: Design
    contenders: dict[str, OwnInterval]
    scope: str  # "training recipe" or "trained weights"
    scope_text: str
    verdict: str
    per_run: list[dict[str, JsonValue]]  # the task's per-run tests (stats.paired), by (seed, fold): task-defined
    across_runs: NotRequired[AcrossRuns]  # tests over independent test sets
    p_floor: NotRequired[float]
    degenerate: NotRequired[str]
    seed_sd: NotRequired[float]
    p_value_holm: NotRequired[float]
    p_equivalence_holm: NotRequired[float]
    unreachable: NotRequired[str]
    to_resolve: NotRequired[RequiredSize]  # what would decide an inconclusive pair
    sequential_alpha: NotRequired[float]


class SeedStreams(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    value: str | None  # protocol.seed_streams; None when the contenders' runs differ in it
    seed_spread: str  # what it makes of the verdict's seed-to-seed spread


class Fairness(TypedDict):
    """The fairness audit (``stats.audit``): the settings every run recorded, compared across contenders."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    contenders: list[str]
    identical: dict[str, JsonValue]  # setting -> its value (a study's own settings: any JSON value)
    deviations: dict[str, dict[str, JsonValue]]  # setting -> contender -> value, and declared/tuned/by_architecture
    seed_streams: SeedStreams
    declared_overrides: dict[str, list[str]]
    tuning: dict[str, JsonValue]
    fair: bool
    note: str
    leakage: NotRequired[dict[str, JsonValue]]  # the data checks' findings (data_checks.json)


class MultipleTesting(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    method: str
    family: str


class Ranking(TypedDict):
    """Average ranks, and Friedman / Nemenyi over independent test sets (``stats.ranks``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    n_blocks: int
    average_ranks: dict[str, float]
    alpha: float
    independent_blocks: bool
    test: str | None
    p_value: float | None
    statistic: float | None
    nemenyi_critical_difference: float | None
    note: str


class KendallTau(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    median: float | None
    q025: float | None
    mean: float | None


class RankStability(TypedDict):
    """Ranks over bootstrap resamples (``stats.rank_stability``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    metric: str
    higher_is_better: bool
    n_boot: int
    resampled: str
    contenders: list[str]
    value: dict[str, float]
    rank: dict[str, float]
    mean_rank: dict[str, float]
    rank_interval: dict[str, list[float]]
    rank_share: dict[str, list[float]]
    p_first: dict[str, float]
    kendall_tau: KendallTau
    method: str


class SignificanceMap(TypedDict):
    """Every pair's Holm-adjusted verdict as a matrix (``stats.rank_stability.significance_map``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    contenders: list[str]
    cells: dict[str, dict[str, str | None]]  # better / worse / equivalent / inconclusive, row against column
    scopes: dict[str, dict[str, str | None]]  # training recipe / trained weights
    scope_note: NotRequired[str]
    family: NotRequired[str]


class Curve(TypedDict):
    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    confidence: list[float]
    frequency: list[float]
    top_label: bool


class Calibration(TypedDict):
    """Expected calibration error and reliability curves on test (``stats.summary``)."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    metric: str
    ece: dict[str, float]
    n_bins: int
    curves: dict[str, Curve]


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
    multiple_testing: NotRequired[MultipleTesting]
    contenders: NotRequired[dict[str, OwnInterval]]
    fairness: Fairness
    ranking: NotRequired[Ranking | None]
    rank_stability: NotRequired[RankStability]
    significance_map: NotRequired[SignificanceMap]
    calibration: NotRequired[Calibration]
    sequential: NotRequired[dict[str, JsonValue]]  # the looks of a sequential study (stats.sequential)
    incomplete: NotRequired[dict[str, JsonValue]]  # an unfinished study: runs not done yet (report.build.incomplete)
    health: NotRequired[dict[str, str]]  # runs whose test predictions collapsed to one class (Task.health)


_COMPARISON = TypeAdapter(Comparison)


def validate(comparison: dict[str, Any]) -> Comparison:
    """``comparison`` checked against the declared types (pydantic); raises ``ValidationError`` naming the
    key when it holds an undeclared key, lacks a required one or a value of another type."""
    return _COMPARISON.validate_python(comparison, strict=False)


def published_schema(adapter: TypeAdapter, title: str) -> dict[str, Any]:
    """A result file's JSON Schema as docs/schemas publishes it: draft 2020-12, titled."""
    schema = adapter.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = title
    return schema


def json_schema() -> dict[str, Any]:
    """The JSON Schema of comparison.json, generated from these types (docs/schemas/comparison.schema.json)."""
    return published_schema(_COMPARISON, "bakeoff comparison.json")


if __name__ == "__main__":  # python -m bakeoff.stats.results > docs/schemas/comparison.schema.json
    import json

    print(json.dumps(json_schema(), indent=1, sort_keys=True))
