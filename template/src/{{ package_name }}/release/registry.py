"""The model registry: MLflow's, in the tracking store (params.yaml or MLFLOW_TRACKING_URI).

Every alias move is also a registered-model tag `alias_move.<time>` (who, when,
why, the gate's verdict): an append-only history, `rollback`'s stack.
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


def open_registry(params_path: Path) -> tuple[Any, Params]:
    """An MlflowClient on the project's store (MLflow imported only then)."""
    params = load_params(params_path)
    return record.client(params.tracking.effective_uri), params


def open_model(params_path: Path) -> tuple[Any, str]:
    """The registry's client and the model's name (deploy.yaml's `registry.model_name`)."""
    from .settings import load_registry_settings

    return open_registry(params_path)[0], load_registry_settings().model_name


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
    actor = os.environ.get("GITHUB_ACTOR") or os.environ.get("GITLAB_USER_LOGIN")
    try:
        return actor or git.git("config", "user.name") or getpass.getuser()
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
    tag = json.dumps(move.__dict__, sort_keys=True)
    client.set_registered_model_tag(name, f"{HISTORY_PREFIX}{time.time_ns()}", tag)
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
    tags = client.get_registered_model(name).tags
    keys = [key for key in tags if key.startswith(HISTORY_PREFIX)]
    keys.sort(key=lambda key: int(key.removeprefix(HISTORY_PREFIX)))
    return [AliasMove(**json.loads(tags[key])) for key in keys]


def model_version(client: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise PipelineError(f"model {name!r} has no version {version}") from None
