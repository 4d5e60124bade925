*** Settings ***
Documentation     Codec negotiation (RFC 3264 offer/answer): the carrier accepts a subset,
...               the customer's answer carries the expected codec, no common codec is
...               488 with nothing billed, and the RTP sent uses the negotiated type.
Resource          resources.resource
Test Tags         codec

*** Test Cases ***
PCMU Offer To A PCMU Carrier Is Answered With PCMU
    ${call}=    Place Call    ${ALICE}    ${PCMU_ONLY}    codecs=PCMU,telephone-event    expect=200
    Answered Codec Should Be    ${call}    PCMU
    Call Should Pass    ${call}

Mixed Offer To A PCMA Carrier Is Answered With PCMA
    ${call}=    Place Call    ${ALICE}    ${PCMA_ONLY}    codecs=PCMU,PCMA,telephone-event    expect=200
    Answered Codec Should Be    ${call}    PCMA
    Call Should Pass    ${call}

G722 Offer Is Answered With G722
    ${call}=    Place Call    ${ALICE}    ${G722_ONLY}    codecs=G722,PCMU,telephone-event    expect=200
    Answered Codec Should Be    ${call}    G722
    Call Should Pass    ${call}

Opus Offer Is Answered With Opus
    ${call}=    Place Call    ${ALICE}    ${OPUS_ONLY}    codecs=opus,PCMU,telephone-event    expect=200
    Answered Codec Should Be    ${call}    opus
    Call Should Pass    ${call}

Telephone-Event Survives Negotiation
    ${call}=    Place Call    ${ALICE}    ${ECHO}    codecs=PCMA,telephone-event    expect=200
    Answer Should Offer    ${call}    telephone-event
    Call Should Pass    ${call}

No Common Codec Gets 488 And Is Not Charged
    ${call}=    Place Call    ${ALICE}    ${G729_ONLY}    codecs=PCMU,PCMA,telephone-event    expect=488
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

RTP Uses The Negotiated Payload Type
    ${call}=    Place Call    ${ALICE}    ${PCMA_ONLY}    codecs=PCMA,telephone-event    media=PCMA    expect=200
    Carrier Should Have Received RTP Payload Types    ${call}    8
    Call Should Pass    ${call}

Early Media Carries The Negotiated Codec Before The Answer
    ${call}=    Place Call    ${ALICE}    ${EARLY_MEDIA}    codecs=PCMA,PCMU,telephone-event    expect=200    expect_media=early
    Answered Codec Should Be    ${call}    PCMA
    Post Dial Delay Should Be At Most    ${call}    1s
    Setup Time Should Be At Least    ${call}    2s
    Call Should Pass    ${call}
