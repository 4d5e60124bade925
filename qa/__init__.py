"""voipqa: VoIP QA and performance testing — real calls through a real platform, judged on four witnesses."""

__version__ = "0.1.0"
