*** Settings ***
Documentation     Carrier failover (dispatcher set 2: carrier-c first, carrier-d second):
...               a blackholed carrier (no answer at all) is left after the transaction timer,
...               503 and dead carriers are routed around, OPTIONS probing marks carriers
...               down and up again, and with none left the customer gets 503 quickly.
...               The cases stop and start carriers, so they run in order.
Metadata          Execution    serial
Resource          resources.resource
Test Tags         failover    lab-only
Suite Teardown    Start Carrier    carrier-c

*** Test Cases ***
Blackholed Carrier Fails Over After The Transaction Timer
    [Tags]    timeout
    ${call}=    Place Call    ${ALICE}    ${FAILOVER_BLACKHOLE}    expect=200    timeout=40s
    Call Should Have Been Answered By Carrier    ${call}    carrier-d
    Final Response Should Arrive Within    ${call}    10s
    Call Should Pass    ${call}

503 From The First Carrier Fails Over To The Second
    ${call}=    Place Call    ${ALICE}    ${FAILOVER_503}    expect=200
    Call Should Have Been Answered By Carrier    ${call}    carrier-d
    Call Should Pass    ${call}

Carrier Down Is Marked Inactive And Calls Go To The Other
    Stop Carrier    carrier-c
    Wait Until Carrier Is Inactive    carrier-c    timeout=15s
    ${call}=    Place Call    ${ALICE}    ${FAILOVER_ANSWER}    expect=200
    Call Should Have Been Answered By Carrier    ${call}    carrier-d
    Call Should Pass    ${call}

Both Carriers Down Gives 503 Within Bound
    Stop Carrier    carrier-d
    ${call}=    Place Call    ${ALICE}    ${FAILOVER_ANSWER}    expect=503    carrier_sees=False
    Final Response Should Arrive Within    ${call}    12s
    [Teardown]    Start Carrier    carrier-d

Recovered Carrier Is Used Again
    Start Carrier    carrier-c
    Wait Until Carrier Is Active    carrier-c    timeout=15s
    ${call}=    Place Call    ${ALICE}    ${FAILOVER_ANSWER}    expect=200
    Call Should Have Been Answered By Carrier    ${call}    carrier-c
    Call Should Pass    ${call}
