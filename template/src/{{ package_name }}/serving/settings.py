"""deploy.yaml's `serving:` section: how the model API runs and what it accepts.

Command-line options override the file; MODEL_DIR overrides
`serving.model_dir` (a container sets it).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator

from ..core.settings import PathSetting, Settings, Text

DEPLOY_SETTINGS = Path("deploy.yaml")
MODEL_DIR = Path("models/serving")
MODEL_DIR_VARIABLE = "MODEL_DIR"


class ServingSettings(Settings):
    model_dir: PathSetting = MODEL_DIR
    host: Text = "127.0.0.1"
    port: int = Field(default=8000, gt=0, le=65535)
    workers: int = Field(default=1, gt=0, le=64)
    max_batch_rows: int = Field(default=1000, gt=0)
    max_body_bytes: int = Field(default=1_000_000, gt=0)
    # Numeric features with no min/max in the contract still get this bound: a
    # finite float such as 1e308 would overflow the scaler to infinity, and
    # float32 (the fast path's input type) tops out near 3.4e38.
    number_limit: float = Field(default=1e15, gt=0, le=1e30)
    token_env: str = "MODEL_API_TOKEN"
    access_log: bool = False

    @field_validator("token_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError("must be an environment variable name")
        return value

    @property
    def token(self) -> str | None:
        """The API token when its environment variable is set and not empty."""
        return os.environ.get(self.token_env) or None


def load_serving_settings(path: Path = DEPLOY_SETTINGS) -> ServingSettings:
    """deploy.yaml's `serving:` section (defaults when the file is absent), MODEL_DIR applied."""
    from ..release.settings import load_deploy_settings

    return load_deploy_settings(path).serving
