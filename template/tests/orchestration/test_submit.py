"""Submitting: the request is built without credentials or network (`--dry-run`),
and what a cluster could not run is refused before anything is sent."""

from pathlib import Path

import pytest
import yaml

from ..package import NAME, PipelineError, load

cli = load("cli")
submit = load("orchestration.submit")

IMAGE = "europe-west1-docker.pkg.dev/acme/ml/trainer:abc123"
DATA = "gs://acme-data/shop/files/md5/65/b3aed08a8012f8399d07d42ba14645"


@pytest.fixture
def vertex(project, monkeypatch):
    """A project set up for Vertex AI in deploy.yaml, as a team would."""
    settings = {
        "target": "vertex",
        "image": IMAGE,
        "data_uri": DATA,
        "vertex": {
            "project": "acme-ml",
            "region": "europe-west1",
            "pipeline_root": "gs://acme-pipelines/root",
            "service_account": "trainer@acme-ml.iam.gserviceaccount.com",
        },
    }
    Path("deploy.yaml").write_text(yaml.safe_dump({"orchestrator": settings}))
    return settings


def test_vertex_dry_run_builds_the_pipeline_job_without_credentials(vertex, capsys):
    pytest.importorskip("google.cloud.aiplatform", reason="the vertex orchestrator's group")
    assert cli.main(["pipeline-compile"]) == 0

    request = submit.run(dry_run=True)

    assert request["project"] == "acme-ml"
    assert request["location"] == "europe-west1"
    assert request["pipeline_root"] == "gs://acme-pipelines/root"
    assert request["service_account"] == vertex["vertex"]["service_account"]
    assert request["images"] == [IMAGE]
    assert request["parameters"]["data_uri"] == DATA
    assert request["labels"] == {"pipeline": NAME.replace("_", "-"), "image-tag": "abc123"}
    assert request["display_name"].startswith(NAME.replace("_", "-"))
    assert "resource_name" not in request
    assert "would submit" in capsys.readouterr().out


def test_kubeflow_dry_run(project, monkeypatch):
    pytest.importorskip("kfp.kubernetes", reason="kfp-kubernetes, for Kubeflow's secrets")
    monkeypatch.setenv("KFP_HOST", "https://kubeflow.example.com/pipeline")
    monkeypatch.setenv("PIPELINE_DATA_URI", "s3://acme-data/dataset.csv")
    assert cli.main(["pipeline-compile", "--target", "kubeflow", "--image", IMAGE]) == 0

    request = submit.run(dry_run=True, target="kubeflow")

    assert request["host"] == "https://kubeflow.example.com/pipeline"
    assert request["experiment"] == NAME.replace("_", "-")
    assert request["token"] == "not set"
    assert request["parameters"]["data_uri"] == "s3://acme-data/dataset.csv"


def test_local_data_is_refused_before_submitting(vertex, monkeypatch, capsys):
    monkeypatch.setenv("PIPELINE_DATA_URI", "/home/me/dataset.csv")
    assert cli.main(["pipeline-compile"]) == 0

    assert cli.main(["pipeline-submit", "--dry-run"]) == 1

    error = capsys.readouterr().err
    assert error.startswith("error: the pipeline's data_uri is '/home/me/dataset.csv', not a gs://")
    assert error.count("\n") == 1


def test_an_image_without_registry_is_refused(vertex, capsys):
    assert cli.main(["pipeline-compile", "--image", "trainer:latest"]) == 0

    assert cli.main(["pipeline-submit", "--dry-run"]) == 1

    assert "names no registry" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("target", "variable", "setting"),
    [
        ("vertex", None, "vertex.project"),
        ("vertex", "GOOGLE_CLOUD_PROJECT", "vertex.pipeline_root"),
        ("kubeflow", None, "kubeflow.host"),
    ],
)
def test_missing_cloud_settings_name_the_key_and_the_variable(
    project, monkeypatch, target, variable, setting
):
    if target == "vertex":
        pytest.importorskip("google.cloud.aiplatform", reason="the vertex orchestrator's group")
    else:
        pytest.importorskip("kfp.kubernetes", reason="kfp-kubernetes, for Kubeflow's secrets")
    if variable:
        monkeypatch.setenv(variable, "acme-ml")
    monkeypatch.setenv("PIPELINE_DATA_URI", DATA)
    assert cli.main(["pipeline-compile", "--target", target, "--image", IMAGE]) == 0

    with pytest.raises(PipelineError, match=f"`orchestrator.{setting}` is not set"):
        submit.run(dry_run=True, target=target)


def test_submitting_needs_a_compiled_pipeline(project):
    with pytest.raises(PipelineError, match="pipeline-compile"):
        submit.run(dry_run=True)
    Path("reports").mkdir()
    Path("reports/pipeline.yaml").write_text("a: 1\n")

    with pytest.raises(PipelineError, match="not a compiled kfp pipeline"):
        submit.run(dry_run=True)
