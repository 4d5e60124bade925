*** Settings ***
Documentation     The same call over UDP, TCP and TLS (RFC 3261 §18; RFC 5630 for
...               sips/TLS). TLS is real TLS on the wire from voipqa's own customer
...               (SIPp in Debian has no TLS), the certificate verified against the
...               platform's CA with SNI; broken certificates are reported as such.
Resource          resources.resource
Test Tags         transport

*** Test Cases ***
Call Over UDP
    ${call}=    Place Call    ${ALICE}    ${ECHO}    transport=udp    expect=200    carrier_sees=True
    Call Should Pass    ${call}

Call Over TCP
    ${call}=    Place Call    ${ALICE}    ${ECHO}    transport=tcp    expect=200    carrier_sees=True
    Call Should Pass    ${call}

Call Over TLS Shows TLS In Record-Route
    ${call}=    Place Call    ${TLS_USER}    ${ECHO}    transport=tls    expect=200    carrier_sees=True
    Record Route Should Contain    ${call}    transport=tls
    Call Should Pass    ${call}

Platform Certificate Is Valid For Its Name
    ${report}=    Check TLS Certificate
    TLS Certificate Should Be Valid    ${report}
    TLS Days To Expiry Should Be At Least    ${report}    7

Expired Certificate Is Reported As Expired
    [Documentation]    Needs a TLS port with an expired certificate: the lab's, or an
    ...                environment's target.ports.tls_expired (skipped where there is none).
    ${report}=    Check TLS Certificate    port=tls_expired
    TLS Certificate Should Be Rejected    ${report}    expired

Wrong Server Name Is Reported
    ${report}=    Check TLS Certificate    server_name=wrong.voipqa.test
    TLS Certificate Should Be Rejected    ${report}    hostname-mismatch

Request Larger Than The UDP Limit Goes On Over TCP
    [Documentation]    RFC 3261 §18.1.1: a request within 200 bytes of the path MTU
    ...                (or over 1300 bytes) must be sent over a congestion-controlled
    ...                transport; the platform relays it to the carrier over TCP.
    ${call}=    Place Call    ${ALICE}    ${ECHO}    transport=tcp    padding=1600    expect=200    carrier_sees=True
    Carrier Should Have Received Request Over    ${call}    tcp
    Call Should Pass    ${call}

REGISTER Over TCP
    ${reg}=    Register    ${REGISTRAR_USER}    transport=tcp    expect=200
    Challenges Should Be    ${reg}    1
    Call Should Pass    ${reg}
