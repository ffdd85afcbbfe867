"""deploy.yaml's `serving:` section: how the model API runs and what it accepts.

Every key has a default here, so a missing file, a missing section or a
missing key keeps the default; a key of the wrong type is a PipelineError
naming the key. Command-line options override the file, and the MODEL_DIR
environment variable overrides `serving.model_dir` (a container sets it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from ..core.settings import Reader

DEPLOY_SETTINGS = Path("deploy.yaml")
MODEL_DIR = Path("models/serving")
MODEL_DIR_VARIABLE = "MODEL_DIR"


@dataclass(frozen=True)
class ServingSettings:
    model_dir: Path = MODEL_DIR
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch_rows: int = 1000
    max_body_bytes: int = 1_000_000
    # Numeric features with no min/max in the contract still get this bound:
    # a finite float such as 1e308 would overflow the scaler to infinity.
    number_limit: float = 1e15
    token_env: str = "MODEL_API_TOKEN"
    access_log: bool = False

    @property
    def token(self) -> str | None:
        """The API token when its environment variable is set and not empty."""
        return os.environ.get(self.token_env) or None


def _positive(reader: Reader, key: str, value: float, maximum: float | None = None) -> None:
    if value <= 0 or (maximum is not None and value > maximum):
        limit = f" and at most {maximum:g}" if maximum is not None else ""
        raise reader.fail(key, f"must be above 0{limit} (got {value:g})")


def read_serving_settings(reader: Reader) -> ServingSettings:
    """The `serving:` section of a settings mapping, with defaults for missing keys."""
    default = ServingSettings()
    settings = ServingSettings(
        model_dir=Path(reader.text("serving.model_dir", str(default.model_dir))),
        host=reader.text("serving.host", default.host),
        port=reader.integer("serving.port", default.port),
        workers=reader.integer("serving.workers", default.workers),
        max_batch_rows=reader.integer("serving.max_batch_rows", default.max_batch_rows),
        max_body_bytes=reader.integer("serving.max_body_bytes", default.max_body_bytes),
        number_limit=reader.number("serving.number_limit", default.number_limit),
        token_env=reader.text("serving.token_env", default.token_env),
        access_log=reader.boolean("serving.access_log", default.access_log),
    )
    _positive(reader, "serving.port", settings.port, 65535)
    _positive(reader, "serving.workers", settings.workers, 64)
    _positive(reader, "serving.max_batch_rows", settings.max_batch_rows)
    _positive(reader, "serving.max_body_bytes", settings.max_body_bytes)
    # float32 (the fast path's input type) tops out near 3.4e38.
    _positive(reader, "serving.number_limit", settings.number_limit, 1e30)
    if not settings.token_env.isidentifier():
        raise reader.fail("serving.token_env", "must be an environment variable name")
    return settings


def load_serving_settings(path: Path = DEPLOY_SETTINGS) -> ServingSettings:
    """Read deploy.yaml (defaults when it is absent), then apply MODEL_DIR."""
    settings = read_serving_settings(Reader.of_file(path)) if path.is_file() else ServingSettings()
    model_dir = os.environ.get(MODEL_DIR_VARIABLE)
    return replace(settings, model_dir=Path(model_dir)) if model_dir else settings
