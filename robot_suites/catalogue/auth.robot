*** Settings ***
Documentation     Digest authentication (RFC 3261 §22, RFC 2617): one challenge per
...               request, the right credentials pass, wrong ones get 403, a replayed
...               nonce is challenged again, and credentials never reach the reports.
Resource          resources.resource
Test Tags         auth

*** Test Cases ***
INVITE Is Challenged Exactly Once And Then Answered
    ${call}=    Place Call    ${ALICE}    ${ECHO}    expect=200    carrier_sees=True
    Challenges Should Be    ${call}    1
    Call Should Pass    ${call}

REGISTER Is Challenged Exactly Once And Accepted
    ${reg}=    Register    ${REGISTRAR_USER}    expect=200
    Challenges Should Be    ${reg}    1
    Call Should Pass    ${reg}

REGISTER With A Wrong Password Gets 403
    ${reg}=    Register    ${REGISTRAR_USER}    password=${WRONG_PASSWORD}    expect=403
    Call Should Pass    ${reg}

INVITE With A Wrong Password Gets 403 And Never Reaches The Carrier
    ${call}=    Place Call    ${ALICE}    ${ECHO}    password=${WRONG_PASSWORD}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Unknown User Gets 403
    ${call}=    Place Call    ${UNKNOWN_USER}    ${ECHO}    password=${WRONG_PASSWORD}    expect=403    carrier_sees=False
    Call Should Pass    ${call}

Replayed Nonce Is Challenged Again
    ${result}=    Replay Credentials    ${ALICE}    ${ECHO}
    Replayed Request Should Be Challenged    ${result}

Credentials Never Appear In The Case's Artefacts
    ${call}=    Place Call    ${ALICE}    ${ECHO}    expect=200
    Secrets Should Not Appear In Artefacts    ${call}
