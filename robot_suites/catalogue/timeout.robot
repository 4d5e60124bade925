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
    # the lab's fr_inv_timer is 15 s: a 408 much sooner is a timer regression too
    Final Response Should Arrive Between    ${call}    14s    25s
    Platform CDR Should Have Code    ${call}    ${call.final_code}
    Call Should Pass    ${call}

Media Timeout Tears The Call Down
    [Tags]    long
    ${call}=    Place Call    ${TIMER_USER}    ${MEDIA_STOPS}    duration=40s    expect=200    timeout=60s
    ...    media=none
    Call Should Have Been Ended By    ${call}    callee
    # rtpengine's timeout is 10 s without RTP: not before it, and not much after
    Call Duration Should Be Between    ${call}    9s    20s
    Platform CDR End Reason Should Be    ${call}    media-timeout
    Call Should Pass    ${call}

Session Never Refreshed Is Ended At Expiry
    [Tags]    long
    ${call}=    Place Call    ${TIMER_USER}    ${MEDIA_SOURCE}    session_expires=90    expect=200    timeout=150s
    Call Should Have Been Ended By    ${call}    callee
    # RFC 4028 §10: the side not refreshing may end the session up to min(32, SE/3) = 30 s
    # before the expiry; sooner than that (or never) is a session-timer regression
    Call Duration Should Be Between    ${call}    58s    100s
    Platform CDR End Reason Should Be    ${call}    session-expired
    # the platform ends both legs: the carrier got its BYE from the caller's side
    Carrier Should Say Call Ended By    ${call}    caller
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
