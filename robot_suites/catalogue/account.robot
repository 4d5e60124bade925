*** Settings ***
Documentation     Balance and permissions are checked before the session: no money, a
...               blocked destination, a foreign source or a per-account list stops the
...               call at the platform; the carrier never sees it and nothing is billed.
Resource          resources.resource
Test Tags         account

*** Test Cases ***
Zero Balance Gets 402
    ${call}=    Place Call    ${ZERO_BALANCE}    ${ECHO}    expect=402    carrier_sees=False
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

Negative Balance Gets 402
    ${call}=    Place Call    ${NEGATIVE_BALANCE}    ${ECHO}    expect=402    carrier_sees=False
    Call Should Pass    ${call}

Balance Is Read Live: Empty Then Restored
    [Tags]    lab-only
    Set Account Balance    ${TOPUP}    0
    ${empty}=    Place Call    ${TOPUP}    ${ECHO}    expect=402    carrier_sees=False    case=balance emptied
    Set Account Balance    ${TOPUP}    10
    ${full}=    Place Call    ${TOPUP}    ${ECHO}    expect=200    carrier_sees=True    case=balance restored
    Call Should Pass    ${empty}
    Call Should Pass    ${full}

Premium Rate Prefix Is Blocked With 403
    ${call}=    Place Call    ${ALICE}    ${PREMIUM}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Blocked Geography Dialled With Plus Is Normalised And Blocked
    ${call}=    Place Call    ${ALICE}    +${GEO_BLOCKED}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Blocked Satellite Prefix Dialled With 00 Is Normalised And Blocked
    ${call}=    Place Call    ${ALICE}    00${SATELLITE}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Allowed Number Dialled With Plus Is Normalised And Answered
    ${call}=    Place Call    ${ALICE}    +${ECHO}    expect=200    carrier_sees=True
    Carrier Should Have Been Asked For    ${call}    ${ECHO}
    Call Should Pass    ${call}

Source Outside The Allow List Gets 403
    ${call}=    Place Call    ${ALICE}    ${ECHO}    local_ip=127.0.0.2    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Account Blacklist Blocks Its Destination
    ${call}=    Place Call    ${DENY_LISTED}    ${DENIED_NUMBER}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Account Blacklist Lets Other Destinations Through
    ${call}=    Place Call    ${DENY_LISTED}    ${ECHO}    expect=200    carrier_sees=True
    Call Should Pass    ${call}

Account Whitelist Blocks Unlisted Destinations
    ${call}=    Place Call    ${ALLOW_ONLY}    ${DTMF_SINK}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Account Whitelist Lets Listed Destinations Through
    ${call}=    Place Call    ${ALLOW_ONLY}    ${ECHO}    expect=200    carrier_sees=True
    Call Should Pass    ${call}
