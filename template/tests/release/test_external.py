"""The cloud's tools (docker, gcloud, kubectl, bq) fail with their own words in the error."""

from __future__ import annotations

import sys

import pytest

from ..package import PipelineError, load

external = load("release.external")


def failing(stderr: str = "", stdout: str = "") -> list[str]:
    """A tool that writes these lines and exits 1 (its command line does not hold them)."""
    out, err = stdout.encode().hex(), stderr.encode().hex()
    script = (
        f"import sys; sys.stdout.write(bytes.fromhex('{out}').decode()); "
        f"sys.stderr.write(bytes.fromhex('{err}').decode()); sys.exit(1)"
    )
    return [sys.executable, "-c", script]


def test_the_cause_is_shown_when_the_last_line_is_only_a_hint():
    stderr = (
        "Unable to connect to the server: getting credentials: exec: executable "
        "gke-gcloud-auth-plugin not found\n\n"
        "Install gke-gcloud-auth-plugin for use with kubectl by following https://...\n"
    )

    with pytest.raises(PipelineError) as raised:
        external.run(failing(stderr), "apply the manifests")

    message = str(raised.value)
    assert "apply the manifests" in message and "exit code 1" in message
    assert "executable gke-gcloud-auth-plugin not found" in message
    assert "Install gke-gcloud-auth-plugin" in message


def test_an_error_printed_on_standard_output_is_shown():
    """bq prints its errors on standard output."""
    stdout = "Error in query string: Field name outcome does not exist in STRUCT<type STRING>\n"

    with pytest.raises(PipelineError, match="Field name outcome does not exist"):
        external.run(failing(stdout=stdout), "read the prediction log from BigQuery")


def test_a_long_output_keeps_its_last_lines():
    script = (
        "import sys\nfor n in range(100): print('step', n, file=sys.stderr)\n"
        "print('ERROR: failed to solve: no space left', file=sys.stderr)\nsys.exit(1)"
    )

    with pytest.raises(PipelineError) as raised:
        external.run([sys.executable, "-c", script], "build the image")

    message = str(raised.value)
    assert "no space left" in message and "step 99" in message and "step 50" not in message


def test_a_missing_tool_is_named():
    with pytest.raises(PipelineError, match="`no-such-tool-here` is not installed"):
        external.run(["no-such-tool-here"], "log docker in")
