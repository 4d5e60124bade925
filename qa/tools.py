"""Locating the external programs voipqa drives, with the Debian package to install."""

from __future__ import annotations

import shutil

from qa.errors import MissingTool

#: program -> Debian package that provides it
PACKAGES: dict[str, str] = {
    "sipp": "sip-tester",
    "kamailio": "kamailio",
    "kamcmd": "kamailio",
    "tshark": "tshark",
    "dumpcap": "tshark",
    "tcpdump": "tcpdump",
    "stunnel4": "stunnel4",
    "rtpengine": "rtpengine-daemon",
    "sqlite3": "sqlite3",
    "openssl": "openssl",
}

_SEARCH = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin:/usr/local/sbin"


def require_tool(name: str) -> str:
    """Return the absolute path of ``name`` or raise MissingTool naming its package."""
    path = shutil.which(name) or shutil.which(name, path=_SEARCH)
    if path is None:
        raise MissingTool(name, PACKAGES.get(name, name))
    return path


def have_tool(name: str) -> bool:
    """True when ``name`` is installed (for optional features such as capture)."""
    return (shutil.which(name) or shutil.which(name, path=_SEARCH)) is not None


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """``preexec_fn``: the kernel sends the child SIGTERM when the thread that started it
    exits, however it dies (SIGKILL included), so no process outlives its owner."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass
