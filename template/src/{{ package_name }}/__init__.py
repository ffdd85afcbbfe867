"""The project's package, grouped by lifecycle (see README.md, "Layout").

- core/: settings files, paths, file helpers, errors, the command registry;
- pipeline/: the stages dvc.yaml chains (read, metadata, validate, preprocess,
  train, evaluate);
- tracking/: recording, ranking and reporting runs.

Run a command with `uv run <package> <command>` or `python -m <package>
<command>`. Importing the package is cheap: heavy libraries are imported by
the function that needs them.
"""

__version__ = "0.1.0"
