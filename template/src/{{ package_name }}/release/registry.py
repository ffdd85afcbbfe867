"""The model registry: MLflow's, in the same store as the tracked runs.

The store is params.yaml's `tracking.uri` (default sqlite:///mlflow.db), or
MLFLOW_TRACKING_URI: a team's server or database, with no code change. A model
that passes the gate becomes a new version with the alias `challenger`;
promotion moves `champion` to it; rollback moves `champion` back. Every alias
move is recorded as a registered-model tag `alias_move.<time>` holding who,
when, why and the gate's verdict: an append-only history.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import git
from ..core.errors import PipelineError
from ..core.params import Params, load_params
from ..tracking import record

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "alias_move."


@dataclass(frozen=True)
class AliasMove:
    alias: str
    kind: str  # "register", "promote" or "rollback"
    version: str
    previous: str | None
    who: str
    when: str
    why: str
    gate: str

    def as_tag(self) -> tuple[str, str]:
        stamp = f"{time.time_ns()}"
        return f"{HISTORY_PREFIX}{stamp}", json.dumps(self.__dict__, sort_keys=True)


def open_registry(params_path: Path) -> tuple[Any, Params]:
    """An MlflowClient on the project's store (MLflow imported only then)."""
    params = load_params(params_path)
    return record.client(params.tracking.effective_uri), params


def version_with_alias(client: Any, name: str, alias: str) -> Any | None:
    """The model version holding an alias, or None (no such model or alias)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_version_model(name: str, version: str) -> Any:
    """The scikit-learn pipeline of a registered version."""
    import mlflow.sklearn

    try:
        return mlflow.sklearn.load_model(f"models:/{name}/{version}")
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise PipelineError(
            f"cannot load version {version} of model {name!r}: {first} (its files live where "
            "the store says: a store moved or shared without its artifacts cannot load it)"
        ) from None


def who() -> str:
    """Whoever moves an alias: the CI's user, else git's, else the login name."""
    for variable in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        if os.environ.get(variable):
            return os.environ[variable]
    configured = git.git("config", "user.name")
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def move_alias(
    client: Any, name: str, alias: str, kind: str, version: str, why: str, gate: str
) -> AliasMove:
    """Point `alias` at `version`, and append the move to the model's history."""
    current = version_with_alias(client, name, alias)
    move = AliasMove(
        alias=alias,
        kind=kind,
        version=str(version),
        previous=str(current.version) if current is not None else None,
        who=who(),
        when=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        why=why,
        gate=gate,
    )
    client.set_registered_model_alias(name, alias, str(version))
    client.set_registered_model_tag(name, *move.as_tag())
    return move


def champions(moves: list[AliasMove]) -> list[str]:
    """The champions still to roll back to, oldest first: promotions push, rollbacks pop."""
    stack: list[str] = []
    for move in moves:
        if move.alias != CHAMPION:
            continue
        if move.kind == "rollback":
            stack.pop()
        else:
            stack.append(move.version)
    return stack


def history(client: Any, name: str) -> list[AliasMove]:
    """Every alias move of a model, oldest first."""
    model = client.get_registered_model(name)
    moves = [
        (key, AliasMove(**json.loads(value)))
        for key, value in model.tags.items()
        if key.startswith(HISTORY_PREFIX)
    ]
    return [move for _, move in sorted(moves, key=lambda item: int(item[0][len(HISTORY_PREFIX) :]))]


def model_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise PipelineError(f"model {name!r} has no version {version}") from None
