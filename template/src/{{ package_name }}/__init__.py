"""The project's package, grouped by lifecycle (see README.md, "Layout").

- core/: settings files, paths, file helpers, errors, the command table;
- pipeline/: the stages dvc.yaml chains (read, metadata, validate, preprocess,
  train, evaluate);
- tracking/: recording, ranking and reporting runs.

Run a command with `uv run <package> <command>` or `python -m <package>
<command>`; each group lists its commands in its __init__.py (`COMMANDS`).
"""

__version__ = "0.1.0"
