"""The pipeline stages, one module each, in the order dvc.yaml chains them:
read, metadata, validate, preprocess, train, evaluate (see docs/experiments.md).
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("read", ".read", "read the raw data into data/interim/"),
    Command("metadata", ".metadata", "describe the data in reports/metadata.json"),
    Command("validate", ".validate", "check the data against canvas.yaml's data contract"),
    Command("preprocess", ".preprocess", "select features and split train/test"),
    Command("train", ".train", "fit the model params.yaml describes"),
    Command("evaluate", ".evaluate", "score the model, write metrics and plots, track the run"),
]
