"""Open a study's report.html in a real headless Chromium (Debian's ``chromium``, driven through
Playwright's protocol client; .ci/run installs it) and say what a reader's browser saw: console errors,
failed or network requests, sections, images that did not decode; a screenshot is saved."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bakeoff.report.html import SECTIONS

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.geteuid() == 0:  # as in CI: Debian's package
        subprocess.run(["bash", "-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                                      "chromium"], capture_output=True, timeout=900)
        path = shutil.which("chromium")
    if path is None:
        pytest.skip("needs Debian's chromium (apt-get install chromium; .ci/run installs it)")
    return path


def _open(browser: Any, report: Path, seen: dict[str, Any]) -> Any:
    """A page of ``report``, loaded, with its console errors, failed and made requests collected in ``seen``."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("requestfailed", lambda r: seen["failed"].append(r.url))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    return page


def open_report(report: Path, screenshot: Path) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    seen: dict[str, Any] = {"errors": [], "failed": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=ARGS, headless=True)
        try:
            page = _open(browser, report, seen)
            seen["sections"] = {s: page.locator(f"section#{s}").count() for s in SECTIONS}
            seen["images"] = page.evaluate(
                "Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0, i.src.slice(0, 22)])")
            seen["verdicts"] = page.locator("#answer p.verdict").all_inner_texts()
            seen["answer_rows"] = page.evaluate(
                "Array.from(document.querySelectorAll('#answer tbody tr')).map(r => "
                "Array.from(r.cells).map(c => c.textContent))")
            seen["methods"] = page.locator("#methods-text").inner_text()
            # sorting: click the metrics table's second header twice; its column comes out in order
            head = page.locator("#metrics table.sortable th").nth(1)
            column = "Array.from(document.querySelectorAll('#metrics table.sortable')[0].tBodies[0].rows)" \
                     ".map(r => parseFloat(r.cells[1].textContent))"
            head.click()
            seen["sorted_once"] = page.evaluate(column)
            head.click()
            seen["sorted_twice"] = page.evaluate(column)
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(screenshot))
        finally:
            browser.close()
    return seen


def check_report(out: Path, screenshot: Path, n_pairs: int | None = None) -> dict[str, Any]:
    """Assert what every report must show; returns what the browser saw for further checks."""
    seen = open_report(out / "report.html", screenshot)
    assert seen["errors"] == [] and seen["failed"] == [], (seen["errors"], seen["failed"])
    uri = (out / "report.html").resolve().as_uri()
    assert [u for u in seen["requests"] if u != uri] == [], "the page fetched something besides itself"
    assert all(n == 1 for n in seen["sections"].values()), seen["sections"]
    assert seen["images"] and all(ok and src.startswith("data:image/png") for _, ok, src in seen["images"]), seen["images"]
    if n_pairs is not None:
        assert len(seen["verdicts"]) == n_pairs, seen["verdicts"]
    assert seen["sorted_once"] == sorted(seen["sorted_once"]) and seen["sorted_twice"] == sorted(seen["sorted_twice"],
                                                                                                reverse=True)
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000
    return seen


def check_suite_report(out: Path, screenshot: Path) -> dict[str, Any]:
    """A suite's report.html in Chromium: clean (no errors, no fetch), every section once, every image
    decodes; returns the answer's verdict lines, the figures' captions and the dataset links."""
    from playwright.sync_api import sync_playwright

    from bakeoff.report.suite_page import SUITE_SECTIONS

    seen: dict[str, Any] = {"errors": [], "failed": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=ARGS, headless=True)
        try:
            page = _open(browser, out / "report.html", seen)
            seen["sections"] = {s: page.locator(f"section#{s}").count() for s in SUITE_SECTIONS}
            seen["images"] = page.evaluate("Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            seen["captions"] = page.locator("figcaption").all_inner_texts()
            seen["verdicts"] = page.locator("#answer p.verdict").all_inner_texts()
            seen["links"] = page.evaluate("Array.from(document.querySelectorAll('#datasets a')).map(a => a.href)")
            seen["methods"] = page.locator("#methods-text").inner_text()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert seen["errors"] == [] and seen["failed"] == [], (seen["errors"], seen["failed"])
    assert [u for u in seen["requests"] if u != (out / "report.html").resolve().as_uri()] == []
    assert all(n == 1 for n in seen["sections"].values()), seen["sections"]
    assert seen["images"] and all(seen["images"]), seen["images"]
    return seen
