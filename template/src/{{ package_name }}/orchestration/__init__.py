"""Level 3, scale-out: the same six stages, then the gate, registration and
promotion, as one Kubeflow Pipelines (kfp v2) pipeline for Vertex AI Pipelines
or any Kubeflow Pipelines endpoint (docs/orchestration.md).

Each step of the pipeline calls the stage's `run(...)` (steps.py): the logic is
the one `dvc repro` runs, never a copy. pipeline.py builds the pipeline,
`pipeline-compile` writes it as YAML, `pipeline-submit` sends it without
waiting, `pipeline-local` runs it here with kfp's local runner. The exit
handler (report.py) posts the run's verdict or failure and starts the deploy
workflow after a promotion. Settings: deploy.yaml's `orchestrator:` section.
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("pipeline-compile", ".compile", "write the kfp pipeline YAML"),
    Command("pipeline-local", ".local", "run the kfp pipeline here with kfp's local runner"),
    Command("pipeline-submit", ".submit", "start a run of the compiled pipeline (no wait)"),
]
