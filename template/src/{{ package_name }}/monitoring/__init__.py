"""Level 4: the model in service, observed (docs/monitoring.md).

The prediction log, `/feedback` and `/metrics` (installed into the level-3
API by `api.install`), the monitoring report. The traffic simulator, the
monitoring smoke test and the retraining loop are test tools, in tests/monitoring/.
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("drift", ".drift", "compare the logged inputs with the training data (exit 3: drift)"),
    Command(
        "feedback-to-data",
        ".feedback_data",
        "append the rows with feedback to data/raw/dataset.csv, as a new DVC version",
    ),
    Command(
        "fetch-window",
        ".fetch_window",
        "copy the production prediction log here (a published SQLite copy, or BigQuery)",
    ),
    Command(
        "forget-request",
        ".forget",
        "delete a request's predictions and feedback from the prediction log",
    ),
    Command(
        "monitor",
        ".monitor",
        "drift, performance and cadence on the latest window: retrain or not (always exit 0)",
    ),
    Command(
        "performance",
        ".performance",
        "the canvas metric on the latest feedback, against its goal and test score"
        " (exit 3: tripped)",
    ),
    Command("profile", ".profile", "write the training data's reference profile (for drift)"),
    Command("prune-log", ".prune", "delete prediction-log records past their retention, now"),
    Command("monitoring-report", ".report", "write the prediction log's HTML report"),
]
