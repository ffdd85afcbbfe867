"""Level 3: the gate, the model registry (aliases `challenger`, `champion`), the
model folder the API serves, and delivery. Settings: deploy.yaml.
"""

from ..core.commands import Command

# `uv run <package> <name>`: the module runs it (see core/commands.py).
COMMANDS = [
    Command("release", ".cycle", "gate the trained model, register it if it passes, promote it"),
    Command("deploy", ".deploy", "deploy an image, smoke-test it, roll back on failure"),
    Command("export", ".export", "write the model folder the API serves"),
    Command("gate", ".gate", "decide whether the trained model may replace the champion"),
    Command("image", ".image", "build (and push) the API image from the model folder"),
    Command("models", ".models", "list the registered model versions, aliases and history"),
    Command("notify-failure", ".notify", "open or update an issue about a failed run"),
    Command("promote", ".promote", "make the challenger (or a version) the champion"),
    Command("register", ".register", "register the model the gate passed, as the challenger"),
    Command("rollback", ".rollback", "move the champion back to the previous one"),
]
