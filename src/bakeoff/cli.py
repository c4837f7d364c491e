"""The ``bakeoff`` command: each command parses its options, calls one function of the Python API
(``bakeoff.api``) and prints what it returns. The layer contract (``.importlinter``) holds it to that: this
module imports ``bakeoff.api`` and ``bakeoff.errors`` and nothing else of bakeoff."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bakeoff.errors import BakeoffError, storage_full, storage_full_error

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fair, reproducible bake-offs of deep-learning architectures on scientific images.")
# no emoji codes: user text (":boom:" in a module name) is printed as written; user text goes through
# rich.markup.escape or Text, never as markup
console = Console(emoji=False)
err_console = Console(stderr=True, emoji=False)


def _error_line(message: str) -> None:
    """The one line a user error gets: "error: " in red, the message literally (no markup, no emoji)."""
    err_console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True, highlight=False)

_DEBUG = {"on": os.environ.get("BAKEOFF_DEBUG") == "1"}


def _debug_flag(value: bool) -> bool:
    """Typer calls this while parsing ``--debug``; ``main`` reads the flag when a command fails."""
    if value:
        _DEBUG["on"] = True
        warnings.filterwarnings("default", category=UserWarning, module="lightning")  # shown again
    return value


DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.", callback=_debug_flag,
                                        is_eager=True)]


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="The study file (YAML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (created, or resumed).")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a study value: KEY.PATH=VALUE.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="SLURM: submit the jobs and return at once; then "
                                         "'bakeoff status OUT' and 'bakeoff report OUT'.")] = False,
    until_decided: Annotated[bool, typer.Option("--until-decided", help="Sequential: add one seed per contender "
                                                "per round while a pair is undecided and can still be decided "
                                                "(also evaluation.sequential).")] = False,
    max_seeds: Annotated[int | None, typer.Option(help="With --until-decided: the most seeds per contender "
                                                       "[default: evaluation.sequential.max_seeds, 10].")] = None,
    debug: DebugOpt = False,
) -> None:
    """Run a study: every contender x seed x fold not yet done in OUT, then tables and plots."""

    from bakeoff import api  # light: a finished study answers below without torch

    if api.is_suite_file(study):
        if until_decided or max_seeds is not None:
            raise BakeoffError(f"{study}: a suite runs a fixed design on every dataset; expected no --until-decided "
                               f"or --max-seeds (run a dataset's study alone for those)")
        _run_suite(study, out, set_ or [], detach)
        return
    cfg = api.load_checked(study, set_ or [])  # a typo in a name: answered before torch or the data load
    sequential = until_decided or cfg.evaluation.sequential is not None
    api.check_sequential_options(sequential, max_seeds, detach)
    if not detach and not sequential and _finished(cfg, out):
        return
    s = api.Study(cfg)
    runs = s.plan()
    console.print(f"[bold]{s.config.name}[/bold]: {len(s.config.contenders)} contenders × "
                  f"{len(s.config.protocol.seeds)} seeds × {len(s.context.splits)} splits = {len(runs)} runs "
                  f"→ {out}")
    with RunProgress(None if sequential else runs) as progress:
        result = (_run_sequential(s, out, len(runs), progress, max_seeds) if sequential
                  else s.run(out, progress, detach=detach))
    failures, queued = progress.failures, progress.queued
    if result is None:
        ids = sorted(set(queued.values()))
        console.print(f"submitted {len(queued)} run(s) as SLURM job(s) {', '.join(ids[:8])}"
                      f"{' ...' if len(ids) > 8 else ''}; follow them with 'bakeoff status {out}', and when they "
                      f"are done build the report with 'bakeoff report {out}'")
        return
    _print_report(result)
    console.print(f"report: {out / 'report.html'}; results: {out / 'results.csv'}, {out / 'summary.csv'}, "
                  f"{out / 'comparison.json'}; plots: {out / 'plots'}")
    if failures:
        err_console.print(f"[red]{len(failures)} run(s) failed[/red]; see run.json in each run directory. "
                          f"Running the same command again retries only those.")
        raise typer.Exit(1)


def _run_sequential(s: Any, out: Path, planned: int, progress: RunProgress, max_seeds: int | None) -> Any:
    """``Study.run_until_decided`` with each look said on the progress display."""
    from bakeoff import api

    per_seed = planned // len(s.config.protocol.seeds)
    progress.set_plan(None, per_seed * max(api.MIN_SEEDS, len(s.config.protocol.seeds)))  # the first look's runs

    def on_look(look: dict[str, Any]) -> None:
        verdicts = "; ".join(f"{k}: {v}" for k, v in look["verdicts"].items())
        stop = {"decided": "every pair decided: stop", "futile": "cannot be decided within the budget: "
                "stop", "budget": "budget reached: stop", None: "undecided: one more seed each"}[look["stop"]]
        progress.say(f"look {look['look']} after {look['seeds']} seeds (nominal alpha "
                     f"{look['nominal_alpha']:.4g}): {verdicts} → {stop}")
        if not look["stop"]:
            progress.set_plan(None, per_seed * (look["seeds"] + 1), new_round=True)

    return s.run_until_decided(out, progress, max_seeds=max_seeds, on_look=on_look)


class RunProgress:
    """What a running study (or suite) shows: on a terminal, rich bars (runs done of the total with an ETA,
    and the current run's epochs); otherwise plain timestamped lines, one at every run start and end and at
    most one a minute in between, so a log file says how far it got. The ETA (``eta``) counts down within
    a run: the runs in flight at their own pace so far, the runs to come at their contender's mean time."""

    def __init__(self, plan: list[Any] | None, quiet_s: float = 60.0) -> None:
        import time

        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.plan, self.quiet_s = plan, quiet_s
        self.total = None if plan is None else len(plan)
        self.terminal = console.is_terminal
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("{task.fields[info]}"), console=console, refresh_per_second=2,
                            transient=False, disable=not self.terminal)
        self.overall = self.bar.add_task("runs", total=self.total, info="")
        self.current = self.bar.add_task("", total=1, info="", visible=False)
        self.done, self.started, self.failures = 0, {}, []
        self.durations: dict[str, list[float]] = {}  # contender -> its runs' times in this process
        self.finished: set[tuple[str, str]] = set()
        self.queued: dict[str, str] = {}
        self.in_flight_max = 1
        self.pace: dict[tuple[str, str], tuple[int, int, str]] = {}  # in flight: (epochs done, epochs, contender)
        self._protocols: dict[tuple[str, str], Any] = {}
        self._clock = time.monotonic
        self._last_line = self._clock()

    def __enter__(self) -> RunProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.__exit__(*exc)

    def say(self, text: str) -> None:
        """A line above the bars on a terminal; a timestamped line otherwise."""
        import time

        if self.terminal:
            self.bar.console.print(text, highlight=False)
        else:
            console.print(f"[{time.strftime('%H:%M:%S')}] {Text.from_markup(text).plain}", highlight=False,
                          markup=False, soft_wrap=True)
            self._last_line = self._clock()

    def eta(self) -> str:
        """The time left: a run in flight takes what its epochs so far say it still needs (elapsed x epochs
        left / epochs done; before its first epoch, its contender's mean time less what has elapsed); a run
        to come takes its contender's mean time (finished runs', else the in-flight runs' projected totals;
        before one of its own is known, the timed contenders' scaled by forward time x epochs: ``run_time_guess``);
        the sum divided by the runs seen in flight at once. Empty until some run has finished or reported an
        epoch."""
        from statistics import fmean

        from bakeoff.api import contender_costs, run_time_guess

        if self.total is None:
            return ""
        now = self._clock()
        projected: dict[str, list[float]] = {}  # contender -> in-flight runs' projected total times
        for key, (done, epochs, contender) in self.pace.items():
            if key in self.started and done > 0:
                projected.setdefault(contender, []).append((now - self.started[key]) * epochs / done)
        means = {c: fmean(ds) for c, ds in self.durations.items() if ds}
        means.update({c: fmean(ts) for c, ts in projected.items() if c not in means})
        if not means:
            return ""
        overall = fmean(means.values())
        costs = contender_costs(self.plan) if self.plan else {}

        def left_of(key: tuple[str, str], contender: str) -> float:
            done, epochs, _ = self.pace.get(key, (0, 0, contender))
            if key in self.started and done > 0:
                return (now - self.started[key]) * (epochs - done) / done
            if key in self.started:
                return max(run_time_guess(contender, means, costs) - (now - self.started[key]), 0.0)
            return run_time_guess(contender, means, costs)

        if self.plan:
            seconds = sum(left_of((r.key, r.hash), r.contender) for r in self.plan if (r.key, r.hash) not in self.finished)
        else:
            seconds = sum(left_of(k, self.pace[k][2] if k in self.pace else "") for k in self.started) + \
                overall * max(0, self.total - self.done - len(self.started))
        seconds /= self.in_flight_max
        return f"ETA {seconds / 60:.0f} min" if seconds >= 90 else f"ETA {seconds:.0f} s"

    def where(self) -> str:
        total = "?" if self.total is None else str(self.total)
        eta = self.eta()
        return f"{self.done}/{total} runs" + (f", {eta}" if eta else "")

    def _protocol(self, run: Any) -> Any:
        key = (run.key, run.hash)
        if key not in self._protocols:
            try:
                self._protocols[key] = run.resolved_protocol()
            except ValueError:  # a run planned without its protocol: epochs unknown
                self._protocols[key] = None
        return self._protocols[key]

    def _epochs(self, run: Any) -> int | None:
        p = self._protocol(run)
        return None if p is None else p.epochs

    def _monitor(self, run: Any) -> str:
        p = self._protocol(run)
        return "" if p is None else str(p.select.monitor)

    def set_plan(self, plan: list[Any] | None, total: int | None = None, new_round: bool = False) -> None:
        """The runs to expect; ``new_round`` (a sequential study's next round): counted again from zero, as
        the round reports every finished run once more."""
        self.plan = plan
        self.total = len(plan) if plan is not None else total
        if new_round:
            self.done = 0
            self.finished.clear()
        self.bar.update(self.overall, total=self.total, **({"completed": 0} if new_round else {}))

    def __call__(self, e: Any) -> None:
        from bakeoff.api import events as ev

        if isinstance(e, ev.Planned):
            self.set_plan(e.runs)
        elif isinstance(e, ev.TrialDone):
            shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.params.items())
            self.bar.update(self.current, description=f"  tuning {e.contender}", completed=e.trial - 1,
                            total=e.trials, info=shown, visible=True)
            if not self.terminal and self._clock() - self._last_line >= self.quiet_s:
                self.say(f"tuning {e.contender}: trial {e.trial}/{e.trials} ({shown})")
        elif isinstance(e, ev.TrialFailed):
            self.say(f"[yellow]tuning {escape(e.contender)}: trial {e.trial} failed:[/yellow] {escape(e.error)}")
        elif isinstance(e, ev.Damaged):
            self.say(f"[yellow]run {escape(e.run.key)}:[/yellow] {escape(e.reason)}")
        elif isinstance(e, ev.Queued):
            self.queued[e.run.key] = e.job
            self.bar.update(self.overall, info=f"{len(self.queued)} SLURM job(s) queued")
            if not self.terminal:
                self.say(f"queued {e.run.key} as SLURM job {e.job}")
        elif isinstance(e, ev.Started):
            self.started[(e.run.key, e.run.hash)] = self._clock()
            self.in_flight_max = max(self.in_flight_max, len(self.started))
            self.bar.update(self.current, description=f"  {e.run.key}", completed=0,
                            total=self._epochs(e.run),
                            info="", visible=True)
            if not self.terminal:
                self.say(f"start {e.run.key} ({self.where()})")
        elif isinstance(e, ev.EpochDone):
            monitor = self._monitor(e.run)
            shown = f"{monitor} {e.metrics[monitor]:.3f}" if monitor in e.metrics else ""
            self.pace[(e.run.key, e.run.hash)] = (e.epoch, e.epochs, e.run.contender)
            self.bar.update(self.current, completed=e.epoch, total=e.epochs, info=shown)
            eta = self.eta()
            if eta:
                self.bar.update(self.overall, info=eta)
            if not self.terminal and self._clock() - self._last_line >= self.quiet_s:
                self.say(f"{e.run.key}: epoch {e.epoch}/{e.epochs} {shown} ({self.where()})")
        elif isinstance(e, (ev.Finished, ev.Skipped)):
            self.done += 1
            t0 = self.started.pop((e.run.key, e.run.hash), None)
            self.pace.pop((e.run.key, e.run.hash), None)
            self.finished.add((e.run.key, e.run.hash))
            if isinstance(e, ev.Finished) and t0 is not None:
                self.durations.setdefault(e.run.contender, []).append(self._clock() - t0)
            status = "cached" if isinstance(e, ev.Skipped) else e.info.get("status")
            if isinstance(e, ev.Finished) and e.failed:
                self.failures.append(f"{e.run.key}: {e.info.get('error')}")
                self.say(f"[red]run {escape(e.run.key)} failed:[/red] {escape(str(e.info.get('error')))}")
            elif not self.terminal and isinstance(e, ev.Finished):
                score = e.info.get("best_score")
                shown = f", best {self._monitor(e.run)} {score:.4f}" if isinstance(score, float) else ""
                self.say(f"done {e.run.key}{shown} ({self.where()})")
            self.bar.advance(self.overall)
            eta = self.eta()
            self.bar.update(self.overall, info=f"last: {e.run.key} ({status})" + (f"; {eta}" if eta else ""))


def _run_suite(path: Path, out: Path, overrides: list[str], detach: bool = False) -> None:
    """``bakeoff run SUITE.yaml``: every dataset's study (all runs through one executor), then the answer
    across datasets; ``--detach`` (SLURM): every dataset's jobs submitted, nothing waited for."""
    from bakeoff import api

    suite = api.Suite.from_yaml(path, overrides)
    console.print(f"[bold]{suite.config.name}[/bold]: {len(suite.studies)} datasets ({', '.join(suite.studies)}) × "
                  f"{len(suite.config.contenders)} contenders → {out}")
    with RunProgress(None) as progress:
        result = suite.run(out, progress, detach=detach)
    failures = progress.failures
    if result is None:
        console.print(f"submitted every dataset's runs; see `bakeoff status {out}`, and `bakeoff report {out}` when "
                      f"they are done (or run the same command again to wait for them)", highlight=False)
        return
    _print_suite(result, out)
    if failures:
        err_console.print(f"[red]{len(failures)} run(s) failed[/red]; see each dataset's report. Running the same "
                          f"command again retries only those.")
        raise typer.Exit(1)


def _print_suite(result: dict[str, Any], out: Path) -> None:
    from rich.table import Table

    scale = " as a fraction of the reference's score" if result.get("normalisation", "").startswith("relative") else ""
    t = Table(title=f"Across {len(result['datasets'])} datasets on {result['primary']}{scale} (95% intervals; "
                    f"prediction: a new dataset of this kind)")
    for col in ("pair", "mean difference [CI]", "prediction", "τ² / I²", "per dataset (A / B / ≈ / ?)", "verdict"):
        t.add_column(col)
    for p in result["pairs"]:
        ci = f"{p['difference']:+.4f} [{p['ci_low']:+.4f}, {p['ci_high']:+.4f}]" if "ci_low" in p else "—"
        pi = ("[{:+.4f}, {:+.4f}]".format(*p["prediction_interval"]) if p.get("prediction_interval") else "too few")
        spread = f"{p['tau2']:.2g} / {p['i2']:.0%}" if p.get("tau2") is not None else "—"
        w = p["wins"]
        t.add_row(f"{p['a']} − {p['b']}", ci, pi, spread, f"{w['a']} / {w['b']} / {w['equivalent']} / "
                  f"{w['inconclusive']}", p["verdict"])
    console.print(t)
    for p in result["pairs"]:
        for note in p.get("notes", []):
            console.print(f"{p['a']} − {p['b']}: {note}", highlight=False)
    warning = result.get("summaries", {}).get("robustness", {}).get("warning")
    if warning:
        console.print(f"[yellow]⚠ {warning}[/yellow]", highlight=False)
    console.print(f"suite: {out / 'suite.json'}; each dataset's report: {out / 'datasets' / '<name>' / 'report.html'}",
                  highlight=False)
    if result.get("report"):
        console.print(f"report: {result['report']}", highlight=False)


def _finished(cfg: Any, out: Path) -> bool:
    """A finished study run again with nothing changed: say so from the saved files (no torch)."""
    from bakeoff import api

    done = api.finished_study(cfg, out)
    if done is None:
        return False
    console.print(f"[bold]{escape(done.name)}[/bold]: all {done.runs} runs are done and nothing changed (settings, "
                  f"data files, runs); nothing to train or recompute → {out}")
    for p in done.pairs:
        console.print(f"  {p['a']} vs {p['b']} on {p['metric']}: {p['difference']:+.4f} "
                      f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}], p = {p.get('p_value_holm', p['p_value']):.3g} "
                      f"(Holm): {p['verdict']}", highlight=False)
    console.print(f"results: {out / 'results.csv'}, {out / 'summary.csv'}, {out / 'comparison.json'}; "
                  f"plots: {out / 'plots'}; 'bakeoff report {out}' rebuilds them")
    return True


@app.command()
def evaluate(
    study: Annotated[Path, typer.Argument(help="The study file (YAML).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output directory (created, or updated).")],
    checkpoint: Annotated[list[str], typer.Option("--checkpoint", "-c",
                                                  help="NAME=PATH: a contender and its trained weights.")],
    fold: Annotated[int, typer.Option("--fold", help="Which split's validation/test parts to score.")] = 0,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a study value: KEY.PATH=VALUE.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Evaluate trained checkpoints (state dicts, Lightning .ckpt) without training: same outputs as run."""
    from bakeoff import api

    s = api.Study.from_yaml(study, set_ or [])
    result = s.evaluate(out, checkpoint, fold)
    _print_report(result)
    console.print(f"results: {out / 'results.csv'}, {out / 'results_table.txt'}, {out / 'comparison.json'}; "
                  f"plots: {out / 'plots'}")
    failed = result.failed
    if len(failed):
        err_console.print(f"[red]{len(failed)} evaluation(s) failed[/red]; see run.json in each run directory.")
        raise typer.Exit(1)


@app.command()
def report(
    out: Annotated[Path, typer.Argument(help="A study output directory.")],
    no_plots: Annotated[bool, typer.Option("--no-plots", help="Tables only.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Rebuild results.csv, summary.csv and plots from saved predictions, without retraining."""
    from bakeoff import api

    if api.is_suite_dir(out):  # each dataset's report, then the answer across them
        _print_suite(api.rebuild_suite(out, make_plots=not no_plots), out)
        return
    with warnings.catch_warnings():  # the Python API's warning for a read-only study: said below in words
        warnings.filterwarnings("ignore", message=r".*cannot be written \(read-only\)")
        result = api.rebuild_report(out, make_plots=not no_plots)
    _print_report(result)
    if not result.saved:
        console.print(f"{out}: cannot be written (read-only), so nothing was rebuilt or saved; the report above is from the saved "
                      f"predictions", highlight=False, markup=False)
        return
    console.print(f"rebuilt: {out / 'results.csv'}, {out / 'summary.csv'}"
                  + ("" if no_plots else f", {len(result.plots)} plots in {out / 'plots'}, {out / 'report.html'}"))
    console.print("✓ first-named contender better  ✗ worse  ≈ equivalent within the margin  ? inconclusive")


@app.command()
def clean(
    out: Annotated[Path, typer.Argument(help="A study output directory.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")] = False,
    cache: Annotated[bool, typer.Option("--cache", help="Delete the decoded images in DIR/cache too (a later run "
                                                        "decodes them again).")] = False,
    debug: DebugOpt = False,
) -> None:
    """Delete what the current study no longer uses, listing each: finished runs of earlier data or
    settings (kept aside in DIR/stale/ when a rerun replaced them), run directories not in the plan, and
    decoded images in DIR/cache of earlier files or settings (with --cache, the current ones too)."""
    from bakeoff import api

    datasets = api.suite_datasets(out)
    if datasets is not None:  # each dataset's study directory in turn
        for name, folder in datasets:
            if (folder / "study.yaml").is_file():
                console.print(f"[bold]{escape(name)}[/bold]")
                clean(folder, dry_run=dry_run, cache=cache, debug=debug)
        return
    plan = api.cleaning(out, cache)
    for path, size in plan.current:
        console.print(f"{'would delete' if dry_run and cache else 'deleting' if cache else 'keeping'} {path} "
                      f"(decoded images of the current data, {size})", highlight=False)
    if not plan.stale and not plan.gone:
        console.print(f"{out}: nothing stale; every run belongs to the current study")
        return
    for p in plan.stale:
        console.print(f"{'would delete' if dry_run else 'deleting'} {p}")
    for p, size in plan.old:
        console.print(f"{'would delete' if dry_run else 'deleting'} {p} (decoded images of earlier files or "
                      f"settings, {size})", highlight=False)
    if not dry_run:
        api.clean_study(plan)
    n, gone = len(plan.stale), len(plan.gone)
    console.print(f"{n} run director{'y' if n == 1 else 'ies'} {'would be ' if dry_run else ''}deleted"
                  + (f"; {gone} cache folder(s) {'would be ' if dry_run else ''}deleted" if gone else ""))


@app.command()
def check(
    study: Annotated[Path, typer.Argument(help="A study file (YAML).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The output directory to check too.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a study value: KEY.PATH=VALUE.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Check a study without training: the file (unknown keys with close matches, duplicate keys), the
    data (read, labelled, split), every contender built and run on a dummy batch of the data's shape on
    its device, its loss, and the output directory. Exit 0 with a summary; else one line, exit 2."""
    import time

    t0 = time.perf_counter()
    from bakeoff import api

    if api.is_suite_file(study):
        suite = api.check_suite(study, out, set_ or [])
        for c in suite.datasets:
            shape = f" of shape {c.shape}" if c.shape else ""
            console.print(f"[green]ok[/green] {escape(c.name)}: {c.samples:,} samples{shape}", highlight=False)
        console.print(f"[green]ok[/green] {escape(suite.name)}: {len(suite.datasets)} datasets, "
                      f"{len(suite.contenders)} contenders built and run on a dummy batch of each dataset; "
                      f"{suite.runs} runs planned" + (f"; --out {out} usable" if out is not None else "")
                      + f" ({time.perf_counter() - t0:.1f} s)")
        return
    c = api.check_study(study, out, set_ or [])
    shape = f" of shape {c.shape}" if c.shape else ""
    console.print(f"[green]ok[/green] {escape(c.name)}: {c.task}, {c.samples:,} samples{shape}; "
                  f"{len(c.contenders)} contenders built and run on a dummy batch "
                  f"({escape(', '.join(c.contenders))}); {c.runs} runs planned"
                  + (f"; --out {out} usable" if out is not None else "")
                  + f" ({time.perf_counter() - t0:.1f} s)")
    if c.cache_note:
        console.print(c.cache_note, highlight=False)


@app.command()
def status(
    out: Annotated[Path, typer.Argument(help="A study output directory.")],
    debug: DebugOpt = False,
) -> None:
    """Show each planned run's state: pending, queued (SLURM job id), running (epoch, ETA), interrupted
    (its process is gone: the same run command resumes it), done (test primary metric) or failed (why).
    On a suite directory: each dataset's counts of runs by state."""
    from bakeoff import api

    if api.is_suite_dir(out):
        _suite_status(api.suite_status(out), out)
        return
    st = api.study_status(out)
    t = Table(title=f"{st.name}: {len(st.runs)} runs in {out}")
    for col in ("contender", "run", "status", "progress", "time (s)", f"test {st.primary}", "detail"):
        t.add_column(col)
    for r, one in zip(st.runs, st.states):
        colour = {"done": "green", "failed": "red", "running": "yellow", "interrupted": "magenta",
                  "queued": "cyan"}.get(one.state, "white")
        t.add_row(r.contender, r.run_id, f"[{colour}]{one.state}[/{colour}]", one.progress,
                  f"{one.wall_time_s:.1f}" if one.wall_time_s is not None else "",
                  f"{one.score:.4f}" if one.score is not None else "", one.detail)
    console.print(t)
    counts, eta = st.counts(), st.eta_s
    left = sum(counts.get(k, 0) for k in ("running", "pending", "queued", "interrupted"))
    when = ("" if not left else f"; study ETA {eta / 60:.0f} min" if eta is not None and eta >= 90 else
            f"; study ETA {eta:.0f} s" if eta is not None else "; study ETA: after the first run finishes")
    console.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + when
                  + (" (one run at a time; runs in parallel finish sooner)" if left and eta is not None else ""))


def _suite_status(st: Any, out: Path) -> None:
    """Each dataset of a suite: its runs counted by state (``api.SuiteStatus``)."""
    states = ("done", "running", "queued", "interrupted", "pending", "failed")
    t = Table(title=f"{st.name}: {len(st.datasets)} datasets in {out}")
    t.add_column("dataset")
    for col in ("runs", *states):
        t.add_column(col, justify="right")
    for name, counts in st.datasets.items():
        if counts is None:
            t.add_row(name, "–", *["" for _ in states[:-2]], "not started", "")
        else:
            t.add_row(name, str(counts["runs"]), *[str(counts.get(k, "")) for k in states])
    console.print(t)
    answer = "written" if st.answered else "not yet (every dataset's runs done first)"
    console.print(", ".join(f"{v} {k}" for k, v in sorted(st.total().items())) + f"; the answer across datasets "
                  f"({out / 'suite.json'}): {answer}", highlight=False)


@app.command()
def export(
    out: Annotated[Path, typer.Argument(help="A study output directory.")],
    to: Annotated[Path, typer.Option("--out", "-o", help="The file to write (a new one).")],
    fmt: Annotated[str, typer.Option("--format", help="safetensors, torch_export (.pt2), onnx or torchscript.")
                   ] = "safetensors",
    contender: Annotated[str | None, typer.Option(help="[default: the one ranked first]")] = None,
    seed: Annotated[int | None, typer.Option(help="[default: its run with the best validation score]")] = None,
    fold: Annotated[int | None, typer.Option(help="With --seed: the fold's run.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Write one run's selected weights as a file other code loads (safetensors, torch.export, ONNX or TorchScript), with a model
    card (FILE.card.json, FILE.card.md): architecture, run, data, protocol, test scores, verdicts, how to load."""
    from bakeoff import api

    card = api.export(out, to, fmt, contender, seed, fold)
    console.print(f"exported {card['contender']} ({card['model']}), seed {card['run']['seed']} fold "
                  f"{card['run']['fold']} ({card['run']['chosen_by']}) → {to}; model card: {to}.card.md", highlight=False)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="Predictions of contender A (.npz or .csv).")],
    b: Annotated[Path, typer.Argument(help="Predictions of contender B, on the same samples.")],
    labels: Annotated[Path | None, typer.Option(help="Labels (.npy, .npz or .csv) if not in the files.")] = None,
    metric: Annotated[str, typer.Option(help="The metric the verdict is about.")] = "auroc",
    min_effect: Annotated[float, typer.Option(help="Smallest difference that matters.")] = 0.0,
    alpha: Annotated[float, typer.Option(help="Significance level; intervals are 1 - alpha.")] = 0.05,
    threshold: Annotated[float, typer.Option(help="Decision threshold for accuracy-type metrics.")] = 0.5,
    out: Annotated[Path | None, typer.Option(help="Write the comparison as JSON here.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Verdict on two sets of per-sample predictions made elsewhere (binary labels, scores in [0, 1])."""
    from bakeoff import api

    found = api.compare_predictions(a, b, labels, metric, min_effect, alpha, threshold, out)
    for shown in found.output():
        console.print(shown, highlight=False)
    if out is not None:
        console.print(f"written: {out}")


@app.command()
def plan(
    out: Annotated[Path, typer.Argument(help="A finished (pilot) study's output directory.")],
    min_effect: Annotated[float | None, typer.Option(help="Margin to plan for (default: the study's).")] = None,
    effect: Annotated[float | None, typer.Option(help="True difference to plan for (default: the observed).")] = None,
    power: Annotated[float, typer.Option(help="Target power for the smallest design.")] = 0.8,
    seeds: Annotated[str | None, typer.Option(help="Seed counts of the grid, comma-separated "
                                                   "[default: 1,2,3,5,10,20].")] = None,
    test_factors: Annotated[str | None, typer.Option(help="Test-set sizes as multiples of today's "
                                                          "[default: 0.5,1,2,4].")] = None,
    sims: Annotated[int, typer.Option(help="Simulated studies per grid cell.")] = 2000,
    seed_sd: Annotated[float | None, typer.Option(help="Seed-to-seed sd of the difference to assume when the pilot "
                                                       "has one seed (it cannot estimate it).")] = None,
    json_out: Annotated[Path | None, typer.Option("--out", help="Write the plan as JSON here.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Power and interval width of each pair for a grid of seeds x test-set sizes, from a pilot study
    (finished, or still running: its finished runs)."""
    from bakeoff import api

    options = dict(min_effect=min_effect, effect=effect, power=power, seeds=seeds, test_factors=test_factors,
                   sims=sims, seed_sd=seed_sd)
    datasets = api.suite_datasets(out)
    if datasets is not None:  # each dataset's own plan (its design), then what more datasets buy
        if json_out is not None:
            raise BakeoffError("--out: with a suite directory each dataset's plan is printed; expected no --out (run "
                               "bakeoff plan DIR/datasets/NAME --out FILE for one dataset's plan as JSON)")
        for name, folder in datasets:
            console.rule(f"dataset {escape(name)}")
            plan(folder, **options, debug=debug)
        for line in api.suite_plan_lines(out):
            console.print(line, highlight=False)
        return
    plans = api.plan_pilot(out, **options, say=lambda text: console.print(text, highlight=False, markup=False))
    for p in plans:
        _print_plan(p, power)
    if json_out is not None:
        api.write_plan(json_out, plans)
        console.print(f"written: {json_out}")


def _print_plan(p: dict[str, Any], power: float) -> None:
    """One pair's plan: the grid as a table, today's design, the proposal with its range, the note."""
    from bakeoff.api import ASSURANCE, grid_table, shares_text

    if p.get("cannot_plan"):
        console.print(f"{p['a']} − {p['b']} on {p['metric']}: cannot plan from this pilot: {p['cannot_plan']}",
                      highlight=False)
        return
    header, body = grid_table(p)
    t = Table(title=f"{p['a']} − {p['b']} on {p['metric']}: P(verdict '{p['verdict']}' beyond ±{p['min_effect']:g}) "
                    f"if the difference is {p['effect']:+.4g}: the median over what this pilot leaves "
                    f"plausible (± expected 95% half-width); * reaches {power:.0%} with probability "
                    f"{ASSURANCE:.0%}")
    for col in header:
        t.add_column(col, justify="right")
    for row in body:
        t.add_row(*row)
    console.print(t)
    console.print(f"today: {p['seeds_now']} seed(s), {p['test_units_now']:,} test {p['unit']}s; "
                  + shares_text(p["variance_shares"]), highlight=False)
    best = p["smallest_design"]
    console.print(f"smallest design in the grid with {power:.0%} power (with probability {ASSURANCE:.0%} given "
                  f"this pilot): {best['seeds']} seeds x {best['test_units']:,} test {p['unit']}s, power "
                  f"{best['power']:.2f} ({best['power_range'][0]:.2f}–{best['power_range'][1]:.2f} over what this "
                  f"pilot leaves plausible)" if best else
                  f"no design in the grid with 2 or more seeds and at least today's test {p['unit']}s reaches "
                  f"{power:.0%} power", highlight=False)
    if best and best["known_within"] > 0.10:
        console.print(f"this pilot cannot promise that power within ±0.10 (its seed-to-seed variance rests on "
                      f"{max(1, p['seeds_now'] - 1)} degree(s) of freedom); more pilot seeds narrow the range",
                      highlight=False)
    console.print(p["note"], highlight=False)


@app.command()
def models(
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. '*unet*'.")] = "*",
    provider: Annotated[str | None, typer.Option(help="bakeoff, monai, timm or all [default: all when a pattern is "
                                                       "given, else bakeoff].")] = None,
    debug: DebugOpt = False,
) -> None:
    """List the model registry (built-ins by default; --provider monai or timm for theirs)."""
    list_(kind="models", pattern=pattern, provider=provider, debug=debug)


@app.command("list")
def list_(
    kind: Annotated[str, typer.Argument(help="models, losses, sources, metrics or tasks.")],
    pattern: Annotated[str, typer.Argument(help="Shell-style filter, e.g. '*unet*'.")] = "*",
    provider: Annotated[str | None, typer.Option(help="Models: bakeoff, monai, timm or all [default: all when a "
                                                       "pattern is given, else bakeoff].")] = None,
    debug: DebugOpt = False,
) -> None:
    """List a registry: models (built-ins by default; --provider monai or timm for theirs), losses
    (with the tasks each fits and its parameters), data sources or metrics (direction, tasks)."""
    from bakeoff import api

    found = api.listing(kind, pattern, provider)
    t = Table(title=found.title, caption=found.caption)
    for col in found.columns:
        t.add_column(col)
    for row in found.rows:
        t.add_row(*row)
    console.print(t)


def _print_report(result: Any) -> None:
    from bakeoff import api

    for shown, style in api.report_output(result):
        console.print(Text(shown, style=style) if style else shown, highlight=False)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, unless --debug."""
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    try:
        app()
    except BakeoffError as exc:
        if _DEBUG["on"]:
            raise
        _error_line(str(exc))
        sys.exit(2)
    except OSError as exc:
        if _DEBUG["on"] or not storage_full(exc):
            raise
        _error_line(str(storage_full_error(exc, 'writing the study')))
        sys.exit(2)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into a silent exit 130
            _interrupted()
        raise


def _interrupted() -> None:
    err_console.print("interrupted; completed runs are kept and the same command resumes", highlight=False)
    sys.exit(130)


def entry() -> None:
    """The ``bakeoff`` command (console script and ``python -m bakeoff.cli``): ``main``, then the process
    ends without the interpreter's teardown. Freeing every module and object that torch, Lightning,
    torchmetrics and matplotlib leave behind takes 1.5-2 s on a 2-core machine after the work is done
    (measured: a study's last line printed at 59.1 s, the process gone at 60.8 s). Everything a normal exit
    does that matters still happens: every ``atexit`` handler (logging's flush, multiprocessing's joins,
    Ray's shutdown, temporary directories, coverage) runs, and stdout and stderr are flushed; where another
    thread that is not a daemon is still alive, the interpreter exits as usual to wait for it. An uncaught
    exception (``--debug``) leaves as usual too, with its traceback."""
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    _leave(code)


def _leave(code: Any) -> None:
    import atexit
    import threading

    if code is None:
        code = 0
    elif not isinstance(code, int):  # what sys.exit("text") does: the text on stderr, status 1
        print(code, file=sys.stderr)
        code = 1
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    try:
        atexit._run_exitfuncs()  # (CPython's own hook: the handlers Py_Finalize would run, in the same order)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe or stream: nothing left to deliver
                pass
        os._exit(code)


if __name__ == "__main__":
    entry()
