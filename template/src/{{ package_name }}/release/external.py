"""Run the cloud's command-line tools (docker, gcloud, kubectl, bq); a failure names
the tool, the step and the last lines the tool wrote (its cause, not only a hint).
"""

from __future__ import annotations

import shlex
import subprocess

from ..core.errors import PipelineError

CAUSE_LINES = 12  # lines of the tool's own words kept in the error


def said(text: str, lines: int = CAUSE_LINES) -> list[str]:
    """The last non-empty lines of a tool's output, stripped."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def run(command: list[str], step: str, timeout: float = 900) -> str:
    """Run a tool; return its standard output, or raise a PipelineError with its words."""
    print(f"$ {shlex.join(command)}", flush=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise PipelineError(f"{step}: `{command[0]}` is not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise PipelineError(f"{step}: `{command[0]}` did not finish in {timeout:.0f} s") from None
    if result.returncode != 0:
        words = said(result.stderr) + said(result.stdout)
        cause = " | ".join(words) if words else "no output"
        raise PipelineError(
            f"{step}: `{shlex.join(command[:3])} ...` failed with exit code "
            f"{result.returncode}: {cause}"
        )
    return result.stdout
