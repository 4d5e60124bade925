*** Settings ***
Documentation     DTMF as RFC 4733 events, SIP INFO (application/dtmf-relay) and in-band
...               G.711 tones: the digits the carrier heard, in order, equal the digits
...               the customer sent.
Resource          resources.resource
Test Tags         dtmf

*** Test Cases ***
RFC 4733 Digits Are Heard In Order
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=0123456789*#    dtmf_mode=rfc4733    expect=200
    Carrier Should Have Heard DTMF    ${call}    0123456789*#
    Call Should Pass    ${call}

RFC 4733 Repeated Digits Are Heard Once Each
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=1155    dtmf_mode=rfc4733    expect=200
    Carrier Should Have Heard DTMF    ${call}    1155
    Call Should Pass    ${call}

SIP INFO Digits Are Heard In Order
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=0123456789*#    dtmf_mode=info    expect=200
    Carrier Should Have Heard DTMF    ${call}    0123456789*#
    Call Should Pass    ${call}

In-Band Tones Are Heard In Order
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=0123456789*#    dtmf_mode=inband    codecs=PCMU
    ...    expect=200
    Carrier Should Have Heard DTMF    ${call}    0123456789*#
    Call Should Pass    ${call}

SIP INFO Extended Events A To D Are Heard
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=ABCD    dtmf_mode=info    expect=200
    Carrier Should Have Heard DTMF    ${call}    ABCD
    Call Should Pass    ${call}

In-Band Tones Over A-Law Are Heard
    ${call}=    Place Call    ${ALICE}    ${DTMF_SINK}    dtmf=2580#    dtmf_mode=inband    codecs=PCMA
    ...    expect=200
    Carrier Should Have Heard DTMF    ${call}    2580#
    Call Should Pass    ${call}
