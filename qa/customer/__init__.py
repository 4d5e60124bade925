"""The Python customer (issue 3): a small SIP UAC over UDP, TCP and real TLS.

SIPp in Debian has no TLS, and a TLS tunnel (stunnel) would hide both the Via transport
and the certificate check; this customer puts ``SIP/2.0/TLS`` in its Via and verifies the
platform's certificate itself (CA + SNI). ``uac``/``transaction`` are sans-I/O;
``client`` is the asyncio shell; ``tls`` checks certificates.
"""

from qa.customer.result import CustomerResult, TlsReport
from qa.customer.uac import CallConfig, UacCall, UacRegister

__all__ = ["CallConfig", "CustomerResult", "TlsReport", "UacCall", "UacRegister",
           "place_call", "register", "tls_check"]


def __getattr__(name: str):
    """``place_call``/``register``/``tls_check`` import the I/O modules only when used."""
    if name in ("place_call", "register"):
        from qa.customer import client
        return getattr(client, name)
    if name == "tls_check":
        from qa.customer.tls import tls_check
        return tls_check
    raise AttributeError(name)
