"""Command `retrain-loop`: level 4's whole loop, on this machine, in one command.

    uv run poe retrain-loop              # drifted traffic, true outcomes: a better model promoted
    uv run poe retrain-loop --worse      # poisoned feedback: the gate refuses, the champion stays

It changes this project, as the monitor and train workflows would:
data/raw/dataset.csv (and its .dvc files) gets the feedback rows, the
registry (mlflow.db) a new version and maybe a new champion, and models/,
reports/ and logs/ new files. It says so first, and at the end how to undo it.

The steps, each timed:

1. a champion: the registry's; with none yet, `dvc repro` then `release --promote`;
2. `export`: its model folder (models/serving, with the reference profile);
3. the shift: the numeric feature whose shift by +3 standard deviations
   (staying inside the data contract) hurts the champion most, measured on
   the test split mixed with its shifted copy (or --shift);
4. the API on a free port (a LocalServer), logging to a fresh SQLite file
   logs/loop-<time>.db;
5. traffic (`simulate`): the test split, shifted, and for a share of the
   rows their true outcome (the outcome of the row each was shifted from), so
   that retraining on them helps. --worse: no feedback on the shifted rows;
   then rows of the training split sent as they are, each with the OPPOSITE
   outcome (a broken feedback integration, or poisoning);
6. `drift` on that log: it must flag the shifted feature;
7. `monitor`: it must ask for retraining;
8. `feedback-to-data`: the rows with feedback appended, a new data version;
9. `dvc repro`: the candidate trained on it;
10. `release --promote`: the gate promotes the candidate, or refuses it
    (scored with the champion on the same test rows, a model that learnt the
    flipped outcomes is worse) and the champion stays. The poisoned rows have
    the inputs of training rows: the split (by row identity) keeps them in
    training, out of the test rows the gate judges on.

A result other than the one expected (promoted; with --worse, refused) is an
error, with the gate's reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.errors import PipelineError
from .settings import LOG_PATH_VARIABLE, LOG_SINK_VARIABLE, load_monitoring_settings

if TYPE_CHECKING:
    import pandas as pd

    from .simulate import Shift

SHIFT_SD = 3.0
# The share of the shifted rows that must stay inside the data contract.
INSIDE_CONTRACT = 0.95
FEEDBACK_SHARE = 0.2
CONCURRENCY = 4
DVC_TIMEOUT_SECONDS = 3600
# Lines of `dvc repro` worth showing: the stages' own one-line summaries.
STAGE_LINE = re.compile(r"^[a-z][a-z-]*: ")


@dataclass
class Steps:
    """The loop's steps as they run: each printed with its time, and kept for the summary."""

    total: int
    done: list[tuple[str, float, str]] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        """Time one step; the caller appends its outcome (one line) to the yielded list."""
        number = len(self.done) + 1
        print(f"\nretrain-loop [{number}/{self.total}] {name}", flush=True)
        outcome: list[str] = []
        begun = time.perf_counter()
        yield outcome
        seconds = time.perf_counter() - begun
        said = outcome[0] if outcome else "done"
        self.done.append((name, seconds, said))
        print(f"retrain-loop [{number}/{self.total}] {name}: {said} ({seconds:.1f} s)", flush=True)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


# --- The registry ------------------------------------------------------------------------------


def champion_version() -> tuple[str, str] | None:
    """The champion's version and data version (the md5 its run recorded), or None."""
    from ..release import registry
    from ..release.settings import load_registry_settings

    client, _ = registry.open_registry(paths.PARAMS)
    name = load_registry_settings().model_name
    champion = registry.version_with_alias(client, name, registry.CHAMPION)
    if champion is None:
        return None
    data = client.get_run(champion.run_id).data.params.get("data_md5", "unknown")
    return str(champion.version), str(data)


def require_local_registry() -> None:
    """On a CI runner without a shared store the gate promotes nothing: the loop is for here."""
    if os.environ.get("CI") and not os.environ.get("MLFLOW_TRACKING_URI"):
        raise PipelineError(
            "retrain-loop runs on a developer's machine: with CI set and no MLFLOW_TRACKING_URI "
            "the gate promotes nothing (the monitor workflow is CI's loop)."
        )


# --- Commands the loop runs ---------------------------------------------------------------------


def dvc_repro() -> None:
    """`dvc repro` through this interpreter's DVC, showing the stages' summary lines."""
    command = [sys.executable, "-m", "dvc", "repro"]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=DVC_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(f"`dvc repro` did not finish in {DVC_TIMEOUT_SECONDS} s") from None
    for line in result.stdout.splitlines():
        if STAGE_LINE.match(line):
            print(f"  {line}")
    if result.returncode != 0:
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        raise PipelineError(f"`dvc repro` failed: {lines[-1] if lines else result.returncode}")


def retrain() -> str:
    """`dvc repro` on the new data version; the candidate's canvas metric on its test split."""
    dvc_repro()
    metrics = json.loads(paths.METRICS.read_text(encoding="utf-8"))
    goal = metrics.get("canvas_goal", {}).get("metric", "roc_auc")
    return f"candidate {goal} {metrics[goal]:.4f} on {metrics['test_rows']} test rows"


def release_promote() -> dict[str, Any]:
    """The train workflow's last step: gate, register, promote (a refusal is an outcome)."""
    from ..release import cycle

    return dict(cycle.run(promote_it=True))


def ensure_champion() -> tuple[tuple[str, str], str]:
    """The registry's champion; with none, the pipeline's model, released and promoted."""
    found = champion_version()
    if found is not None:
        return found, f"version {found[0]} (already the champion)"
    dvc_repro()
    result = release_promote()
    found = champion_version()
    if not result["promoted"] or found is None:
        raise PipelineError(
            "no champion: the pipeline's first model did not pass the gate (reports/gate.md)"
        )
    return found, f"version {found[0]} (trained and promoted: there was none)"


# --- The shift ----------------------------------------------------------------------------------


def shifted(rows: pd.DataFrame, column: str, sds: float, spread: float) -> pd.DataFrame:
    moved = rows.copy()
    moved[column] = moved[column] + sds * spread
    return moved


def inside_contract(values: pd.Series, rule: Any) -> float:
    """The share of the values the contract's min and max accept (missing ones count)."""
    present = values.dropna()
    if present.empty:
        return 0.0
    inside = present.between(
        rule.min if rule and rule.min is not None else -math.inf,
        rule.max if rule and rule.max is not None else math.inf,
    )
    return float(inside.mean())


def hurt_by_shift(champion: dict[str, Any], rows: pd.DataFrame, column: str, goal: Any) -> float:
    """How much worse the champion scores on the rows mixed with their shifted copy."""
    import pandas as pd

    from ..release import gate

    spread = float(rows[column].std())
    mixed = pd.concat([rows, shifted(rows, column, SHIFT_SD, spread)], ignore_index=True)
    before = champion["metrics"][goal.name]
    after = gate.score(champion["model"], mixed, *champion["features"])[goal.name]
    return before - after if goal.higher_is_better else after - before


def choose_shift(given: Shift | None) -> tuple[Shift, str]:
    """--shift, or the numeric feature whose shift hurts the champion most (inside the contract)."""
    from ..core.canvas import load_canvas
    from ..core.params import load_params
    from ..release import gate
    from .simulate import Shift

    if given is not None:
        if not given.numeric:
            raise PipelineError("--shift: give a numeric shift, column=+3 (standard deviations).")
        return given, "as given (--shift)"
    canvas, params = load_canvas(paths.CANVAS), load_params(paths.PARAMS)
    rows = gate.test_rows(paths.INTERIM_DATA, params)
    champion, note = gate.find_champion(paths.PARAMS, rows)
    if champion is None:
        raise PipelineError(f"no champion to shift the traffic against: {note}")
    rules = canvas.data_contract.columns
    hurts = {}
    for column in champion["features"][0]:
        spread = float(rows[column].std())
        moved = shifted(rows, column, SHIFT_SD, spread)[column]
        if spread > 0 and inside_contract(moved, rules.get(column)) >= INSIDE_CONTRACT:
            hurts[column] = hurt_by_shift(champion, rows, column, canvas.success_metric)
    if not hurts:
        raise PipelineError(
            f"no numeric feature stays inside the data contract when shifted by +{SHIFT_SD:g} "
            "standard deviations: pass --shift column=+SD"
        )
    column = max(hurts, key=lambda name: hurts[name])
    goal = canvas.success_metric.name
    return Shift(column, deviations=SHIFT_SD), (
        f"the champion's {goal} falls by {hurts[column]:.4f} on the test rows mixed with their "
        "shifted copy, the most of the features inside the contract"
    )


# --- Traffic ------------------------------------------------------------------------------------


def flipped_outcomes(rows: Path, folder: Path) -> Path:
    """The rows with each outcome swapped for the other class: poisoned feedback."""
    from ..core.canvas import load_canvas

    target = load_canvas(paths.CANVAS).prediction_target
    frame = files.read_csv(rows, paths.READ_STAGE_HINT)
    classes = sorted(frame[target].dropna().unique().tolist())
    if len(classes) != 2:
        raise PipelineError(f"--worse flips a binary target: {target} has {len(classes)} classes")
    frame[target] = frame[target].map({classes[0]: classes[1], classes[1]: classes[0]})
    path = folder / "poisoned.csv"
    files.write_csv(path, frame)
    return path


def send(url: str, folder: Path, shift: Shift, rows: int, share: float, worse: bool) -> list[str]:
    """The loop's traffic; one summary line per simulate run."""
    from ..serving.settings import load_serving_settings
    from .simulate import Traffic, send_traffic

    serving = load_serving_settings()
    first = Traffic(rows, CONCURRENCY, 1, 0.0 if worse else share, 0.5, (shift,))
    runs = [(paths.TEST_DATA, first)]
    if worse:
        # Rows the model trained on, told the opposite: the test rows stay clean.
        poisoned = flipped_outcomes(paths.TRAIN_DATA, folder)
        feedback_rows = max(1, round(rows * share))
        runs.append((poisoned, Traffic(feedback_rows, CONCURRENCY, 1, 1.0, 0.5)))
    said = []
    for data, traffic in runs:
        summary = send_traffic(url, serving, data, 30.0, traffic)
        said.append(
            f"{summary.answered:,} answered, {summary.refused:,} refused, "
            f"{summary.feedback_recorded:,} feedback ({data.name})"
        )
    return said


def serve_and_send(
    log: Path, shift: Shift, rows: int, share: float, worse: bool, timeout: float
) -> str:
    """Start the champion's API on a fresh log, send the traffic, stop it (the log flushed)."""
    from ..serving.client import LocalServer
    from ..serving.settings import load_serving_settings

    environment = {LOG_SINK_VARIABLE: "sqlite", LOG_PATH_VARIABLE: str(log.resolve())}
    model_dir = load_serving_settings().model_dir
    with (
        tempfile.TemporaryDirectory() as folder,
        LocalServer(model_dir, timeout=timeout, environment=environment) as server,
    ):
        print(f"  the API at {server.url}, ready in {server.start_seconds:.1f} s, logging to {log}")
        said = send(server.url, Path(folder), shift, rows, share, worse)
        server.stop()  # SIGTERM: the log writes what it holds
    return "; ".join(said)


# --- The checks ---------------------------------------------------------------------------------


def run_drift(log: Path) -> str:
    """`drift` on the loop's log: it must find the shift."""
    from . import drift

    try:
        drift.run(log=log)
    except drift.DriftFound:
        report = json.loads(drift.DRIFT_JSON.read_text(encoding="utf-8"))
        found = report.get("drifted_features", [])
        return f"drift found in {', '.join(found) or 'the refused rows'} (exit 3)"
    raise PipelineError(f"drift found nothing in {log}: the loop has nothing to react to")


def run_monitor(log: Path) -> str:
    from . import monitor

    report = monitor.run(log=log)
    if not report["retrain"]:
        raise PipelineError(f"monitor did not ask for retraining: {report['reason']}")
    return f"retrain=true ({report['reason']})"


def add_feedback(log: Path) -> str:
    from . import feedback_data

    result = feedback_data.run(log=log)
    if not result["changed"]:
        raise PipelineError(f"no new feedback row in {log}: nothing to retrain on")
    return f"{result['added']} rows added: data {result['previous_md5']} -> {result['md5']}"


def gate_reason() -> str:
    from ..release.settings import GATE_REPORT

    try:
        return str(json.loads(GATE_REPORT.read_text(encoding="utf-8"))["reason"])
    except (OSError, ValueError, KeyError):
        return f"see {GATE_REPORT}"


# --- The command --------------------------------------------------------------------------------


def default_rows() -> int:
    """Enough traffic for drift's smallest window, with room for refused rows."""
    minimum = load_monitoring_settings().drift.min_rows
    return max(500, math.ceil(minimum * 1.25 / 100) * 100)


def warn_about_changes(log: Path) -> None:
    print(
        "retrain-loop: this CHANGES THE PROJECT as the monitor and train workflows would: "
        f"{paths.RAW_DATA} (+ its .dvc files) gets the feedback rows, the registry a new version "
        f"(and maybe a new champion), models/ and reports/ new files; the log is {log}."
    )


def expected(result: dict[str, Any], worse: bool) -> None:
    """Promoted, or with --worse refused: anything else is an error, with the gate's reason."""
    if worse and result["promoted"]:
        raise PipelineError(
            f"the gate promoted a model trained on poisoned feedback: {gate_reason()}"
        )
    if not worse and not result["promoted"]:
        raise PipelineError(f"the gate refused the retrained model: {gate_reason()}")


def summary_lines(
    steps: Steps, before: tuple[str, str], after: tuple[str, str] | None
) -> list[str]:
    lines = ["", "retrain-loop: what happened"]
    lines += [f"  {seconds:7.1f} s  {name}: {said}" for name, seconds, said in steps.done]
    now = after or before
    lines.append(f"  {steps.seconds:7.1f} s  in all")
    lines.append(f"  champion: version {before[0]} -> version {now[0]}")
    lines.append(f"  champion's data version: {before[1]} -> {now[1]}")
    undo = f"git checkout -- {paths.RAW_DATA}.dvc && uv run dvc checkout"
    if now[0] != before[0]:
        undo += f", then `uv run poe rollback` (back to version {before[0]})"
    lines.append(f"  to undo: {undo}")
    return lines


def run(
    worse: bool = False,
    rows: int | None = None,
    feedback_share: float = FEEDBACK_SHARE,
    shift: Shift | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """The command: the loop, then an error unless the gate decided as expected."""
    result = run_loop(worse, rows, feedback_share, shift, timeout)
    expected(result, worse)
    return result


def run_loop(
    worse: bool = False,
    rows: int | None = None,
    feedback_share: float = FEEDBACK_SHARE,
    shift: Shift | None = None,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Every step of the loop, whichever way the gate decides; what happened."""
    from ..release import export

    require_local_registry()
    log = Path("logs") / f"loop-{datetime.now(UTC):%Y%m%dT%H%M%S%f}.db"
    rows = rows or default_rows()
    warn_about_changes(log)
    steps = Steps(total=9)
    with steps.step("champion") as said:
        before, text = ensure_champion()
        said.append(text)
    with steps.step("export the champion") as said:
        export.run()
        said.append(f"version {before[0]} -> models/serving")
    with steps.step("choose the shift") as said:
        chosen, why = choose_shift(shift)
        said.append(f"{chosen.column} +{chosen.deviations:g} sd: {why}")
    kind = "poisoned feedback (outcomes flipped)" if worse else "true outcomes as feedback"
    with steps.step(f"serve and send traffic ({kind})") as said:
        said.append(serve_and_send(log, chosen, rows, feedback_share, worse, timeout))
    plan: list[tuple[str, Callable[[], str]]] = [
        ("drift", lambda: run_drift(log)),
        ("monitor", lambda: run_monitor(log)),
        ("feedback-to-data", lambda: add_feedback(log)),
        ("dvc repro (retrain)", retrain),
    ]
    for name, action in plan:
        with steps.step(name) as said:
            said.append(action())
    with steps.step("release --promote (gate)") as said:
        result = release_promote()
        verdict = "promoted" if result["promoted"] else "refused: the champion stays"
        said.append(f"{verdict} ({gate_reason()})")
    after = champion_version()
    print("\n".join(summary_lines(steps, before, after)))
    return {
        "worse": worse,
        "log": str(log),
        "shift": {"column": chosen.column, "deviations": chosen.deviations},
        "champion_before": before[0],
        "champion_after": after[0] if after else None,
        "data_before": before[1],
        "data_after": after[1] if after else None,
        "promoted": result["promoted"],
        "seconds": round(steps.seconds, 1),
        "steps": [{"name": n, "seconds": round(s, 2), "outcome": o} for n, s, o in steps.done],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..core.commands import positive_int
    from .simulate import parse_shift, share

    parser.add_argument(
        "--worse", action="store_true",
        help="poisoned feedback (flipped outcomes): the gate must refuse the retrained model",
    )  # fmt: skip
    parser.add_argument(
        "--rows", type=positive_int, help="rows of shifted traffic (drift.min_rows x 1.25)"
    )
    parser.add_argument(
        "--feedback-share", type=share, default=FEEDBACK_SHARE,
        help=f"share of the rows that get feedback ({FEEDBACK_SHARE})",
    )  # fmt: skip
    parser.add_argument(
        "--shift", type=parse_shift, metavar="COLUMN=+SD",
        help="the shift (default: the numeric feature whose shift hurts the champion most)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for the API to start")
