"""SIPp as configured agents (DESIGN §10): argv lists, process control, result parsing.

    uas = Agent("uas_answer", calls=3)
    uac = Agent("uac_call", remote=uas.address, service="1000", calls=3, call_duration_ms=500)
    res_uas, res_uac = await asyncio.gather(run(uas, tmp / "uas"), run(uac, tmp / "uac"))
    res_uac.calls[0].final_code  # 200
"""

from qa.sipp.agent import (
    BUILTIN_SCENARIOS, DEFAULT_CODECS, MASK, TRANSPORTS, Agent, mask_argv, mask_secrets, sdp_keys,
)
from qa.sipp.outcome import EXIT_CODES, Outcome
from qa.sipp.process import SippResult, run
from qa.sipp.traces import (
    CallResult, TracedMessage, build_calls, parse_error_file, parse_message_log,
    parse_stat_file, stat_summary,
)

__all__ = [
    "BUILTIN_SCENARIOS", "DEFAULT_CODECS", "EXIT_CODES", "MASK", "TRANSPORTS", "Agent",
    "CallResult", "Outcome", "SippResult", "TracedMessage", "build_calls", "mask_argv",
    "mask_secrets", "parse_error_file", "parse_message_log", "parse_stat_file", "run",
    "sdp_keys", "stat_summary",
]
