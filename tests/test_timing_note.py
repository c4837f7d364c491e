"""Timings you can trust: a run timed on a busy machine, or whose repeats disagree, is said so; the load
and spread are measured by measure_inference itself."""

from __future__ import annotations

import torch

from bakeoff.measure.speed import measure_inference
from bakeoff.measure.timing import timing_note


def test_busy_or_noisy_timings_are_named_and_quiet_ones_are_not():
    assert timing_note({"load_per_core": 0.3, "latency_spread": 0.05}) == ""
    assert timing_note({"load_per_core": 2.4, "latency_spread": 0.05}) == "machine busy while timing (load 2.4 per core)"
    assert "spread 80% of their median" in timing_note({"load_per_core": 0.2, "latency_spread": 0.8})
    assert timing_note({}) == ""  # nothing measured: nothing claimed


def test_measure_inference_records_the_load_and_the_spread_of_its_repeats():
    speed = measure_inference(torch.nn.Linear(4, 1), torch.zeros(8, 4), batch_size=4, repeats=8, warmup=1)
    assert speed["load_per_core"] >= 0 and 0 <= speed["latency_spread"] < 100
