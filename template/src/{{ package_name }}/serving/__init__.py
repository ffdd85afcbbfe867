"""Serving (level 3): the model folder, the model API and the commands around it.

- model_folder.py: write and load the self-contained folder the API and the
  container image use (metadata, pipeline, ONNX fast path, examples);
- fast_path.py: the pipeline converted to ONNX, checked against it;
- schema.py: request and answer schemas built from the data contract;
- app.py: the FastAPI app (create_app);
- serve, score, smoke: the commands (serve.py, score.py, smoke.py), client.py their HTTP
  client (the load test is tests/serving/test_load.py);
- settings.py: deploy.yaml's `serving:` section.
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("score", ".score", "predict every row of a CSV or Parquet file with the model folder"),
    Command("serve", ".serve", "run the model API (FastAPI + uvicorn)"),
    Command("smoke", ".smoke", "check a running model API (or --start a local one)"),
]
