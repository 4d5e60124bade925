"""voipqa: VoIP QA and performance testing — real calls through a real platform, judged on four witnesses."""

__version__ = "0.1.0"

from qa import compiled as _compiled

_compiled.install()  # the analyzer's mypyc-compiled modules, when built from these sources
