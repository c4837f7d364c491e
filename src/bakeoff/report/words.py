"""Statistics' records in words, shared by the terminal report (``build``) and the HTML page (``html``)."""

from __future__ import annotations

from typing import Any


def to_decide_text(pair: dict[str, Any]) -> str:
    """What would decide an inconclusive pair, in words: more seeds, more test units, or neither."""
    need = pair.get("to_resolve")
    if not need:
        return ""
    unit = pair.get("unit", "sample")
    options = []
    if need.get("seeds"):
        options.append(f"~{need['seeds']} seeds")
    if need.get("test_units"):
        options.append(f"~{need['test_units']:,} test {unit}s"
                       + (" (for a verdict on these trained weights)" if need.get("test_units_scope") else ""))
    if need.get("seeds_for_a_plan"):  # one seed: the recipe needs seeds before anything can be planned
        return need["note"] + ("; " + options[0] if options else "")
    if not options:
        return need.get("note", "neither more seeds nor more test units within reason")
    return " or ".join(options) + f" ({need['power']:.0%} power if the difference holds)"
