"""Run the cloud's own command-line tools (docker, gcloud, kubectl) and explain failures.

Delivery talks to the outside world only through these tools, so a failure
names the tool, the step and the tool's own last line of error, in one line.
"""

from __future__ import annotations

import shlex
import subprocess

from ..core.errors import PipelineError


def run(command: list[str], step: str, timeout: float = 900) -> str:
    """Run a tool; return its standard output, or raise a one-line PipelineError."""
    print(f"$ {shlex.join(command)}", flush=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise PipelineError(f"{step}: `{command[0]}` is not installed on this machine") from None
    except subprocess.TimeoutExpired:
        raise PipelineError(f"{step}: `{command[0]}` did not finish in {timeout:.0f} s") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1].strip() if lines else f"exit code {result.returncode}"
        raise PipelineError(f"{step}: `{shlex.join(command[:3])} ...` failed: {last}")
    return result.stdout
