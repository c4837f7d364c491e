"""The fairness audit: what every contender shared, and every way one differed."""

from __future__ import annotations

import json
from typing import Any

CONTENDER_KEYS = ("model", "params")  # what a contender is declared to differ in
# How each run trained (run.json → training), compared like the protocol. A per-run figure is left out.
TRAINING_SKIP = ("compile_time_s", "train_samples_per_s", "device", "precision")
# Differences that follow from the architecture under identical settings (a network that uses an op without
# a deterministic CUDA kernel; channels-last for 2D convolutions only; data that fit beside a larger model):
# listed as deviations, marked "by_architecture", and not counted against fairness.
BY_ARCHITECTURE = ("training.determinism.mode", "training.determinism.nondeterministic_ops",
                   "training.channels_last", "training.data_on_device", "training.pinned_memory",
                   "training.optimizer_kernel")


# What each kind of seed streams makes of the verdict's seed-to-seed spread (``stats.design.run_spread``)
SEED_SPREAD = {
    "shared": ("a seed drives the same initialisation, data order and augmentation streams for every contender, so "
               "a seed's runs of two contenders may be good or bad together: verdicts use the seed-to-seed spread "
               "of their paired differences (R - 1 degrees of freedom)"),
    "per_contender": ("each contender's streams come from (seed, its name), so a seed's runs of two contenders are "
                      "independent by construction: verdicts pool the two contenders' seed spreads (up to 2(R - 1) "
                      "degrees of freedom)"),
}


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def fairness_audit(run_infos: list[dict[str, Any]], declared_overrides: dict[str, dict[str, Any]],
                   tuning: dict[str, Any] | None = None) -> dict:
    """Compare, across contenders, the settings each run recorded in its run.json.

    Identical settings are listed once; every difference is a deviation naming each contender's value.
    Per-contender protocol overrides declared in the study are deviations too, and are marked as declared.
    """
    per: dict[str, dict[str, set]] = {}
    for info in run_infos:
        if info.get("status") != "done":
            continue
        c = info["contender"]
        facts = _flatten({"protocol": info.get("protocol", {})})
        facts.pop("protocol.seeds", None)
        # run.json files written before the setting existed trained with shared streams
        facts.setdefault("protocol.seed_streams", "shared")
        for part, fp in (info.get("split") or {}).items():
            facts[f"split.fold{info['fold']}.{part}"] = fp
        facts["device"] = info.get("device")
        training = {k: v for k, v in (info.get("training") or {}).items() if k not in TRAINING_SKIP}
        facts.update(_flatten({"training": training}) if training else {})
        bucket = per.setdefault(c, {})
        for k, v in facts.items():
            bucket.setdefault(k, set()).add(json.dumps(v, sort_keys=True))
        bucket.setdefault("seeds", set()).add(json.dumps(info["seed"]))
    contenders = sorted(per)
    keys = sorted({k for d in per.values() for k in d})
    identical, deviations = {}, {}
    for k in keys:
        shown = {}
        for c in contenders:
            vals = sorted(json.loads(x) for x in per[c].get(k, {"null"})) if k == "seeds" else \
                [json.loads(x) for x in sorted(per[c].get(k, {"null"}))]
            shown[c] = vals if k == "seeds" or len(vals) > 1 else vals[0]
        if len({json.dumps(v, sort_keys=True) for v in shown.values()}) == 1:
            identical[k] = next(iter(shown.values()))
        else:
            deviations[k] = shown
    declared = {c: sorted(_flatten({"protocol": o})) for c, o in declared_overrides.items() if o}
    tuned_keys = {f"protocol.{p}" for p in (tuning or {}).get("space", {})}
    for k, values in deviations.items():
        values["declared"] = any(k in keys_ for keys_ in declared.values())
        values["tuned"] = k in tuned_keys
        values["by_architecture"] = k in BY_ARCHITECTURE
    streams = identical.get("protocol.seed_streams")
    return {"contenders": contenders, "identical": identical, "deviations": deviations,
            "seed_streams": {"value": streams, "seed_spread": SEED_SPREAD.get(streams, SEED_SPREAD["shared"])},
            "declared_overrides": declared, "tuning": tuning or {"mode": "none"},
            "fair": all(v.get("declared") or v.get("tuned") or v.get("by_architecture")
                        for v in deviations.values()),
            "note": "contenders differ by design in model and params; everything else is compared here"}
