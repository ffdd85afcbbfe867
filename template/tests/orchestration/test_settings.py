"""deploy.yaml's `orchestrator:` section, the environment that overrides it, and the
defaults the compiled pipeline gets (image, data, deploy trigger)."""

from pathlib import Path

import pytest
import yaml

from ..package import NAME, PipelineError, load

settings_module = load("orchestration.settings")
pipeline = load("orchestration.pipeline")


def write_deploy(section: dict) -> None:
    Path("deploy.yaml").write_text(yaml.safe_dump({"orchestrator": section}))


def test_defaults_without_deploy_yaml(project):
    settings = settings_module.load_orchestrator_settings()

    assert settings.target == "kubeflow"
    assert settings.pipeline_name == NAME.replace("_", "-")
    assert settings.secrets == settings_module.SECRET_NAMES
    assert settings.vertex.region == "us-central1"


def test_the_project_deploy_settings_load():
    """The project's own deploy.yaml (edited by the team) still loads."""
    root = Path(__file__).resolve().parents[2]
    settings = settings_module.load_orchestrator_settings(root / "deploy.yaml")

    assert settings.target in settings_module.TARGETS


def test_environment_overrides_deploy_yaml(project, monkeypatch):
    write_deploy({"target": "vertex", "vertex": {"project": "from-file", "region": "europe-west4"}})
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-ci")

    settings = settings_module.load_orchestrator_settings()

    assert settings.target == "vertex"
    assert settings.vertex.project == "from-ci"
    assert settings.vertex.region == "europe-west4"


def test_an_unknown_target_is_one_clear_error(project):
    write_deploy({"target": "airflow"})

    message = r"`orchestrator.target` must be one of vertex or kubeflow \(got 'airflow'\)"
    with pytest.raises(PipelineError, match=message):
        settings_module.load_orchestrator_settings()


def test_secrets_must_be_variable_names(project):
    write_deploy({"secrets": ["MLFLOW_TRACKING_URI", "not a name"]})

    with pytest.raises(PipelineError, match=r"orchestrator\.secrets"):
        settings_module.load_orchestrator_settings()


def test_the_image_is_tagged_with_the_commit(project):
    write_deploy({"image_repository": "europe-west1-docker.pkg.dev/acme/ml/"})
    settings = settings_module.load_orchestrator_settings()

    image = settings.pipeline_image("0123456789abcdef0123")

    assert image == "europe-west1-docker.pkg.dev/acme/ml/" + (
        f"{NAME.replace('_', '-')}-pipeline:0123456789ab"
    )


def test_an_explicit_image_wins(project, monkeypatch):
    write_deploy({"image_repository": "ghcr.io/acme"})
    monkeypatch.setenv("PIPELINE_IMAGE", "ghcr.io/acme/trainer:v1")

    assert settings_module.load_orchestrator_settings().pipeline_image("abc") == (
        "ghcr.io/acme/trainer:v1"
    )


def test_the_deploy_trigger_defaults_to_the_ci_that_compiles(project, monkeypatch):
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/shop")
    monkeypatch.setenv("GITHUB_API_URL", "https://github.example.com/api/v3")

    url, ref = settings_module.load_orchestrator_settings().deploy_trigger()

    assert url == "https://github.example.com/api/v3/repos/acme/shop/dispatches"
    assert ref == "main"


def test_on_gitlab_the_trigger_is_the_project_pipeline_trigger(project, monkeypatch):
    monkeypatch.setenv("CI_API_V4_URL", "https://gitlab.example.com/api/v4")
    monkeypatch.setenv("CI_PROJECT_ID", "42")
    monkeypatch.setenv("CI_DEFAULT_BRANCH", "trunk")

    url, ref = settings_module.load_orchestrator_settings().deploy_trigger()

    assert url == "https://gitlab.example.com/api/v4/projects/42/trigger/pipeline"
    assert ref == "trunk"


def test_the_data_is_the_dvc_remote_copy_of_the_version_git_records(project):
    Path(".dvc").mkdir()
    Path(".dvc/config").write_text(
        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = gs://acme-data/shop\n"
    )
    md5 = "65b3aed08a8012f8399d07d42ba14645"
    Path("data/raw/dataset.csv.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": md5, "path": "dataset.csv", "hash": "md5"}]})
    )

    uri = pipeline.default_data_uri(settings_module.load_orchestrator_settings())

    assert uri == f"gs://acme-data/shop/files/md5/65/{md5[2:]}"


def test_without_dvc_the_data_is_the_local_file(project):
    uri = pipeline.default_data_uri(settings_module.load_orchestrator_settings())

    assert uri == (project.root / "data/raw/dataset.csv").resolve().as_posix()
