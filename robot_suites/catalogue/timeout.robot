*** Settings ***
Documentation     Timers: the INVITE timer (RFC 3261 §17.1.1.2), media timeouts (rtpengine),
...               session timers (RFC 4028) and a carrier that never answers at all.
Resource          resources.resource
Test Tags         timeout

*** Test Cases ***
Carrier Ringing Forever Gets A Final Response At The INVITE Timer
    [Tags]    long
    ${call}=    Place Call    ${ALICE}    ${RING_FOREVER}    expect=any    carrier_sees=True    timeout=60s
    Final Response Should Be One Of    ${call}    408    480
    Final Response Should Arrive Within    ${call}    25s
    Platform CDR Should Have Code    ${call}    ${call.final_code}
    Call Should Pass    ${call}

Media Timeout Tears The Call Down
    [Tags]    long
    ${call}=    Place Call    ${TIMER_USER}    ${MEDIA_STOPS}    duration=40s    expect=200    timeout=60s
    ...    media=none
    Call Should Have Been Ended By    ${call}    callee
    Call Duration Should Be At Most    ${call}    20s
    Call Should Pass    ${call}

Session Never Refreshed Is Ended At Expiry
    [Tags]    long
    ${call}=    Place Call    ${TIMER_USER}    ${MEDIA_SOURCE}    session_expires=90    expect=200    timeout=150s
    Call Should Have Been Ended By    ${call}    callee
    Call Duration Should Be At Most    ${call}    100s
    Call Should Pass    ${call}

Too Small Session-Expires Gets 422 With Min-SE
    ${call}=    Place Call    ${TIMER_USER}    ${ECHO}    session_expires=30    expect=422    carrier_sees=False
    Response Header Should Be    ${call}    Min-SE    90
    Call Should Pass    ${call}

Late Answer: Ringing Is Quick And Setup Time Is Measured
    ${call}=    Place Call    ${ALICE}    ${ANSWER_LATE}    expect=200    carrier_sees=True
    Post Dial Delay Should Be At Most    ${call}    1s
    Setup Time Should Be At Least    ${call}    2s
    Call Should Pass    ${call}
