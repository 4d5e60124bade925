"""The native mock carrier (DESIGN §1, §4): a SIP UAS playing the number plan.

- :mod:`qa.carrier.plan`   number plan loading/validation, longest-prefix lookup (no I/O but the file)
- :mod:`qa.carrier.uas`    the SIP call logic as a sans-I/O state machine (events in, actions out)
- :mod:`qa.carrier.media`  per-call RTP: echo or generated silence/tone, RFC 4733 + in-band digits
- :mod:`qa.carrier.freeswitch` the FreeSWITCH twin's configuration rendered from the plan
- :mod:`qa.carrier.cdr`    the carrier CDR JSONL writer/reader
- :mod:`qa.carrier.server` the asyncio shell (UDP/TCP transports, RTP sockets, timers, CDR file)
- :mod:`qa.carrier.cli`    ``python -m qa.carrier serve`` / ``voipqa carrier serve``
"""

from qa.carrier.plan import NumberPlan, Route, load_plan, parse_plan

__all__ = ["NumberPlan", "Route", "load_plan", "parse_plan"]
