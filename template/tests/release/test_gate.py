"""The gate: canvas targets, the champion re-scored on the same rows, slices.

Registry tests import MLflow (a few seconds each)."""

import json
from pathlib import Path

import joblib
import numpy as np
import pytest
import yaml

from ..conftest import make_frame
from ..package import load

cli = load("cli")
gate = load("release.gate")
settings_module = load("release.settings")


def trained(project, tmp_path, **gate):
    """Track into a tmp store, train, and set deploy.yaml's gate section."""
    project.set(
        "params",
        "tracking",
        {"enabled": True, "uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": "gate"},
    )
    Path("deploy.yaml").write_text(yaml.safe_dump({"gate": gate}))
    for stage in ("read", "preprocess", "train", "evaluate"):
        assert cli.main([stage]) == 0


def verdict() -> dict:
    return json.loads(Path("reports/gate.json").read_text())


def test_without_a_champion_the_canvas_alone_decides(project, tmp_path, capsys):
    trained(project, tmp_path)

    assert cli.main(["gate"]) == 0

    checks = {check["name"]: check for check in verdict()["checks"]}
    assert checks["canvas metric"]["passed"] is True
    assert checks["latency"]["passed"] is True
    assert checks["beats the champion"]["passed"] is None
    assert "no champion yet" in checks["beats the champion"]["detail"]
    assert "## Gate: PASSED" in Path("reports/gate.md").read_text()


def test_a_model_below_the_canvas_threshold_is_refused(project, tmp_path, capsys):
    project.set("canvas", "success_metric.threshold", 1.5)
    trained(project, tmp_path)

    assert cli.main(["gate"]) == 1

    error = capsys.readouterr().err
    assert (
        error.startswith("error: gate refused the model: canvas metric") and error.count("\n") == 1
    )
    assert verdict()["passed"] is False


def test_a_model_over_the_latency_budget_is_refused(project, tmp_path):
    project.set("canvas", "latency_budget_ms", 0.000001)
    trained(project, tmp_path)

    assert cli.main(["gate"]) == 1

    latency = next(c for c in verdict()["checks"] if c["name"] == "latency")
    assert latency["passed"] is False


def test_a_model_not_better_than_the_champion_is_refused_and_the_champion_stays(
    project, tmp_path, capsys
):
    trained(project, tmp_path)
    for command in ("gate", "register", "promote"):
        assert cli.main([command]) == 0, capsys.readouterr().err
    # The same model again: it does not beat the champion by the margin.
    assert cli.main(["train"]) == 0

    assert cli.main(["gate"]) == 1

    assert "beats the champion" in capsys.readouterr().err
    assert cli.main(["register"]) == 1  # a refused model is never registered
    capsys.readouterr()
    assert cli.main(["models"]) == 0
    listing = capsys.readouterr().out
    assert "challenger,champion" in listing and "\n2 " not in listing


def test_promotion_and_rollback_are_recorded(project, tmp_path, capsys):
    trained(project, tmp_path, margin=0.0)
    for _ in range(2):  # two versions pass (margin 0: equal is enough)
        for command in ("gate", "register", "promote"):
            assert cli.main([command]) == 0, capsys.readouterr().err

    assert cli.main(["rollback", "--reason", "smoke test failed"]) == 0
    assert cli.main(["rollback"]) == 1  # version 1 was the first champion
    capsys.readouterr()
    assert cli.main(["models"]) == 0

    listing = capsys.readouterr().out
    assert "1        champion" in listing.replace("challenger,", "")
    assert "smoke test failed" in listing


class WorseFor:
    """A model that predicts the opposite of another for one category's rows."""

    def __init__(self, model, column: str, value: str) -> None:
        self.model, self.column, self.value = model, column, value

    def predict_proba(self, rows):
        probabilities = self.model.predict_proba(rows).copy()
        mask = (rows[self.column] == self.value).to_numpy()
        probabilities[mask] = probabilities[mask][:, ::-1]
        return probabilities

    def predict(self, rows):
        return self.predict_proba(rows).argmax(axis=1)


def test_a_slice_much_worse_than_the_champion_s_is_refused(project, tmp_path):
    frame = make_frame(rows=400)
    # Clinics independent of the target, so every slice holds both classes.
    frame["clinic"] = np.random.default_rng(1).choice(["north", "south", "east", "west"], 400)
    project.write_data(frame)
    trained(project, tmp_path)
    champion_model = joblib.load("models/model.joblib")
    params = load("core.params").load_params(Path("params.yaml"))
    goal = load("core.canvas").load_canvas(Path("canvas.yaml")).success_metric
    rows = gate.test_rows(Path("data/interim/dataset.csv"), params)
    champion = {"version": "1", "model": champion_model, "features": gate.features_of(params)}
    settings = settings_module.GateSettings(slice_column="clinic", min_slice_rows=10)

    checks = gate.slice_checks(
        goal, rows, WorseFor(champion_model, "clinic", "north"), champion, params, settings
    )

    verdicts = {check.name: check.passed for check in checks}
    assert verdicts["slice clinic=north"] is False
    assert verdicts["slice clinic=south"] is True


def test_an_unknown_slice_column_is_named(project, tmp_path, capsys):
    trained(project, tmp_path, slice_column="clinik")
    assert cli.main(["gate"]) == 1
    assert "`gate.slice_column` is 'clinik'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["promote", "rollback"])
def test_nothing_to_move_is_a_clear_error(project, tmp_path, capsys, command):
    trained(project, tmp_path)
    assert cli.main([command]) == 1
    assert capsys.readouterr().err.startswith("error: model ")
