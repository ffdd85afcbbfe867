"""Check the DVC remote before DVC talks to it, and say clearly what is wrong.

    python scripts/dvc_remote.py check      # before `dvc pull` (uv run poe pull)
    python scripts/dvc_remote.py push       # `dvc push`, failing fast (the pre-push hook)

DVC's own errors do not say that a local remote folder is missing ("Checkout
failed ... Is your cache up to date?"), and a push to a cloud remote without
credentials hangs for about a minute before failing, blocking `git push`.
This script names the remote, its location and the fix instead, in one line.
"""

from __future__ import annotations

import argparse
import configparser
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DVC_FOLDER = Path(".dvc")
PUSH_TIMEOUT_SECONDS = int(os.environ.get("DVC_PUSH_TIMEOUT", "600"))
REMOTE_SECTION = re.compile(r"""^'?remote\s+"(?P<name>[^"]+)"'?$""")


class RemoteError(Exception):
    """A problem with the remote, said in one line with its fix."""


@dataclass
class Remote:
    name: str
    url: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        match = re.match(r"^([a-z0-9]+)://", self.url)
        return match.group(1) if match else "local"

    def local_path(self) -> Path:
        """A local remote's folder; a relative path is resolved from the .dvc folder."""
        path = Path(self.url).expanduser()
        return path if path.is_absolute() else (DVC_FOLDER / path).resolve()


def read_config() -> configparser.ConfigParser:
    """.dvc/config, then .dvc/config.local (personal settings win)."""
    config = configparser.ConfigParser(interpolation=None)
    config.read([DVC_FOLDER / "config", DVC_FOLDER / "config.local"], encoding="utf-8")
    return config


def default_remote(config: configparser.ConfigParser) -> Remote:
    name = config.get("core", "remote", fallback=None)
    if not name:
        raise RemoteError(
            "no default DVC remote: set one with `uv run dvc remote add -d storage <url>`"
        )
    for section in config.sections():
        match = REMOTE_SECTION.match(section)
        if match and match["name"] == name:
            options = dict(config.items(section))
            if not options.get("url"):
                break
            return Remote(name, options.pop("url"), options)
    raise RemoteError(f"the DVC remote {name!r} has no url: see `uv run dvc remote list`")


def aws_credentials_found(remote: Remote, environ: dict[str, str], home: Path) -> bool:
    variables = (
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    )
    options = ("access_key_id", "profile", "credentialpath", "configpath")
    files = (home / ".aws" / "credentials", home / ".aws" / "config")
    return (
        any(environ.get(name) for name in variables)
        or any(remote.options.get(name) for name in options)
        or any(path.is_file() for path in files)
    )


def google_credentials_found(remote: Remote, environ: dict[str, str], home: Path) -> bool:
    config_root = Path(environ["APPDATA"]) if environ.get("APPDATA") else home / ".config"
    adc = config_root / "gcloud" / "application_default_credentials.json"
    return bool(
        environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        or remote.options.get("credentialpath")
        or adc.is_file()
    )


CREDENTIAL_CHECKS = {
    "s3": (aws_credentials_found, "AWS credentials (AWS_* variables, ~/.aws, or a profile)"),
    "gs": (google_credentials_found, "Google credentials (`gcloud auth application-default "
           "login` or GOOGLE_APPLICATION_CREDENTIALS)"),
}  # fmt: skip


def check(remote: Remote, action: str, environ: dict[str, str], home: Path) -> None:
    """Raise RemoteError when `action` (pull or push) cannot work with this remote."""
    if remote.scheme == "local":
        folder = remote.local_path()
        if action == "pull" and not folder.is_dir():
            raise RemoteError(
                f"the DVC remote {remote.name!r} is the folder {folder}, which does not exist "
                f"(a clone in another folder resolves the relative path {remote.url!r} "
                "elsewhere): point this clone at the data with "
                f"`uv run dvc remote modify --local {remote.name} url <path to the folder>`"
            )
        return
    found, needed = CREDENTIAL_CHECKS.get(remote.scheme, (None, ""))
    if found is not None and not found(remote, environ, home):
        raise RemoteError(
            f"no credentials for the DVC remote {remote.name!r} ({remote.url}): configure "
            f"{needed} (docs/data.md), or skip the data this time "
            "(`SKIP=dvc-pre-push git push`)"
        )


def push() -> int:
    """`dvc push`, bounded in time so a stuck network never blocks `git push` for long."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "dvc", "push"], timeout=PUSH_TIMEOUT_SECONDS, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        raise RemoteError(
            f"`dvc push` took more than {PUSH_TIMEOUT_SECONDS} s and was stopped: check the "
            "network, or raise DVC_PUSH_TIMEOUT"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["check", "push"])
    args = parser.parse_args(argv)
    try:
        remote = default_remote(read_config())
        action = "pull" if args.action == "check" else "push"
        check(remote, action, dict(os.environ), Path.home())
        return push() if args.action == "push" else 0
    except RemoteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
