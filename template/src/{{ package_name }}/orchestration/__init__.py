"""Level 3, scale-out: the DVC stages, the gate, registration and promotion as one
Kubeflow Pipelines (kfp v2) pipeline, for Vertex AI or Kubeflow (docs/orchestration.md).
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("pipeline-compile", ".compile", "write the kfp pipeline YAML"),
    Command("pipeline-local", ".local", "run the kfp pipeline here with kfp's local runner"),
    Command("pipeline-submit", ".submit", "start a run of the compiled pipeline (no wait)"),
]
