"""Check the DVC remote before DVC talks to it, and say clearly what is wrong.

    python scripts/dvc_remote.py check      # before `dvc pull` (uv run poe pull)
    python scripts/dvc_remote.py push       # `dvc push`, failing fast (the pre-push hook)

DVC does not say that a local remote folder is missing ("Checkout failed ...
Is your cache up to date?"), and a push to a cloud remote without credentials
hangs for about a minute, blocking `git push`: this names the remote and the fix.
"""

from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
from pathlib import Path

DVC_FOLDER = Path(".dvc")
PUSH_TIMEOUT_SECONDS = int(os.environ.get("DVC_PUSH_TIMEOUT", "600"))
GCLOUD = Path(os.environ.get("APPDATA") or "~/.config") / "gcloud"
# A cloud remote's scheme: what to configure, and the variables, remote options and
# files where its client finds credentials.
CREDENTIALS = {
    "s3": (
        "AWS credentials (AWS_* variables, ~/.aws, or a profile)",
        ["AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"],
        ["access_key_id", "profile", "credentialpath", "configpath"],
        [Path("~/.aws/credentials"), Path("~/.aws/config")],
    ),
    "gs": (
        "Google credentials (`gcloud auth application-default login` or "
        "GOOGLE_APPLICATION_CREDENTIALS)",
        ["GOOGLE_APPLICATION_CREDENTIALS"],
        ["credentialpath"],
        [GCLOUD / "application_default_credentials.json"],
    ),
}  # fmt: skip


class RemoteError(Exception):
    """A problem with the remote, said in one line with its fix."""


def default_remote() -> tuple[str, dict[str, str]]:
    """The default remote's name and options: .dvc/config, then .dvc/config.local."""
    config = configparser.ConfigParser(interpolation=None)
    config.read([DVC_FOLDER / "config", DVC_FOLDER / "config.local"], encoding="utf-8")
    name = config.get("core", "remote", fallback="")
    if not name:
        raise RemoteError(
            "no default DVC remote: set one with `uv run dvc remote add -d storage <url>`"
        )
    for section in (f"'remote \"{name}\"'", f'remote "{name}"'):  # as DVC writes it, or by hand
        if config.get(section, "url", fallback=""):
            return name, dict(config[section])
    raise RemoteError(f"the DVC remote {name!r} has no url: see `uv run dvc remote list`")


def check(name: str, options: dict[str, str], pulling: bool) -> None:
    """Raise RemoteError when a pull (or a push) cannot work with this remote."""
    url = options["url"]
    scheme = url.partition("://")[0] if "://" in url else "local"
    if scheme in CREDENTIALS:
        needed, variables, option_names, files = CREDENTIALS[scheme]
        if not (
            any(os.environ.get(variable) for variable in variables)
            or any(options.get(option) for option in option_names)
            or any(path.expanduser().is_file() for path in files)
        ):
            raise RemoteError(
                f"no credentials for the DVC remote {name!r} ({url}): configure {needed} "
                "(docs/data.md), or skip the data this time (`SKIP=dvc-pre-push git push`)"
            )
    elif scheme == "local" and pulling:
        folder = (DVC_FOLDER / Path(url).expanduser()).resolve()  # an absolute url stays as it is
        if not folder.is_dir():
            raise RemoteError(
                f"the DVC remote {name!r} is the folder {folder}, which does not exist (a clone "
                f"in another folder resolves the relative path {url!r} elsewhere): point this "
                f"clone at the data with `uv run dvc remote modify --local {name} url <path to "
                "the folder>`"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "push"])
    pushing = parser.parse_args(argv).action == "push"
    try:
        check(*default_remote(), pulling=not pushing)
        if pushing:  # bounded in time: a stuck network never blocks `git push` for long
            command = [sys.executable, "-m", "dvc", "push"]
            return subprocess.run(command, timeout=PUSH_TIMEOUT_SECONDS, check=False).returncode
    except subprocess.TimeoutExpired:
        print(
            f"error: `dvc push` took more than {PUSH_TIMEOUT_SECONDS} s and was stopped: check "
            "the network, or raise DVC_PUSH_TIMEOUT",
            file=sys.stderr,
        )
        return 1
    except RemoteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
