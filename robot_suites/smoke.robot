*** Settings ***
Documentation     Smoke: the platform authenticates, checks balance and blocked
...               destinations before routing, routes to the carrier and bills the call.
Library           qa.robot.VoipQA
Test Tags         smoke

*** Variables ***
${ALICE}             1001
${ZERO_BALANCE}      1002
${ECHO}              1555000100
${BLOCKED}           19005550100
${WRONG_PASSWORD}    not-the-password

*** Test Cases ***
Authenticated Call Is Answered And Billed
    [Tags]    auth    cdr
    ${call}=    Place Call    ${ALICE}    ${ECHO}    duration=3s    expect=200    carrier_sees=True
    Call Should Be Answered    ${call}
    Carrier Should Have Seen Call    ${call}
    Platform CDR Should Match Call    ${call}    tolerance=1s
    Call Should Pass    ${call}

Wrong Password Is Rejected With 403
    [Tags]    auth
    ${call}=    Place Call    ${ALICE}    ${ECHO}    password=${WRONG_PASSWORD}    expect=403    carrier_sees=False
    Final Response Should Be    ${call}    403
    Carrier Should Not Have Seen Call    ${call}
    Call Should Pass    ${call}

Zero Balance Gets 402 And Never Reaches The Carrier
    [Tags]    account
    ${call}=    Place Call    ${ZERO_BALANCE}    ${ECHO}    expect=402    carrier_sees=False
    Final Response Should Be    ${call}    402
    Carrier Should Not Have Seen Call    ${call}
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

Blocked Prefix Gets 403
    [Tags]    account
    ${call}=    Place Call    ${ALICE}    ${BLOCKED}    expect=403    carrier_sees=False
    Final Response Should Be    ${call}    403
    Carrier Should Not Have Seen Call    ${call}
    Call Should Pass    ${call}
