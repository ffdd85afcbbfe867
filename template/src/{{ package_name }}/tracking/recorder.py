"""The recording process: `python -m <package>.tracking.recorder <uri> <experiment>`.

`record.Recorder` starts it when the `evaluate` stage starts. It imports
MLflow and opens the store (the cost of tracking: seconds) while the stage
scores the model, then reads one run as JSON on stdin, records it through
MLflow's public fluent API and writes one JSON line on stdout: the run's id
and whether it is new, or the error. An empty stdin (the stage failed first)
records nothing. It imports nothing from the package: starting it costs only
Python's start-up besides MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from typing import Any


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def record(mlflow: Any, experiment_id: str, run: dict[str, Any]) -> dict[str, Any]:
    """Record a run unless a finished run has its digest; return its id and whether it is new."""
    same = f"tags.run_digest = '{run['tags']['run_digest']}' and attributes.status = 'FINISHED'"
    found = mlflow.search_runs([experiment_id], same, max_results=1, output_format="list")
    if found:
        return {"run_id": found[0].info.run_id, "new": False}
    # A failure inside ends the run as FAILED: never taken for an identical finished run.
    with mlflow.start_run(experiment_id=experiment_id, run_name=run["name"], tags=run["tags"]):
        mlflow.log_params(run["params"])
        mlflow.log_metrics(run["metrics"])
        for path, folder in run["artifacts"]:
            mlflow.log_artifact(path, artifact_path=folder)
        return {"run_id": mlflow.active_run().info.run_id, "new": True}


def main(uri: str, experiment: str) -> None:
    answer_to = sys.stdout
    sys.stdout = sys.stderr  # whatever MLflow prints stays out of the answer
    os.environ.pop("MLFLOW_RUN_ID", None)  # a new run, never one named by the environment
    warnings.simplefilter("ignore")
    failure: Exception | None = None
    try:
        import mlflow

        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        mlflow.set_tracking_uri(uri)
        found = mlflow.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    except Exception as error:
        failure = error
    request = sys.stdin.read()
    if not request:
        return
    try:
        if failure is not None:
            raise failure
        answer = record(mlflow, experiment_id, json.loads(request))
    except Exception as error:
        answer = {"error": first_line(error)}
    answer_to.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
