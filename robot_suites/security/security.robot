*** Settings ***
Documentation     The platform under attack, as an intruder would try it: each case runs one
...               attack of ``voipqa security`` and passes when the defence held (the checks
...               and evidence are in ``security/NAME/security.json`` under the output
...               directory; the frames are in the run's capture). Every attack is bounded in
...               packets and time and sends only to the environment's target, from the
...               addresses its ``security.sources`` names. The suite runs alone, after every
...               other case (``Execution exclusive``): floods would disturb the cases beside it.
...               Select it with ``--include security``; run the same from the command line
...               with ``voipqa security``.
Library           qa.robot.VoipQA
Metadata          Execution    exclusive
Test Tags         security

*** Test Cases ***
A Scan Learns No Version And Routes No Unauthenticated INVITE
    ${attack}=    Run Attack    scan
    Defence Should Hold    ${attack}

Existing And Unknown Users Get The Same Answers
    ${attack}=    Run Attack    enumeration
    Defence Should Hold    ${attack}

A Dictionary Attack Is Locked Out And Finds No Password
    ${attack}=    Run Attack    brute-force
    Defence Should Hold    ${attack}

A Nonce Serves One Request And A Wrong Answer Is Not Challenged Again
    ${attack}=    Run Attack    single-challenge
    Defence Should Hold    ${attack}

No Unauthenticated Or Forged Call Reaches The Carrier Or Is Billed
    ${attack}=    Run Attack    toll-fraud
    Defence Should Hold    ${attack}

Malformed Messages Are Refused And The Platform Stays Up
    ${attack}=    Run Attack    torture
    Defence Should Hold    ${attack}

An OPTIONS Flood Is Throttled While Customers Still Call
    ${attack}=    Run Attack    flood-options
    Defence Should Hold    ${attack}

A REGISTER Flood Is Throttled While Customers Still Call
    ${attack}=    Run Attack    flood-register
    Defence Should Hold    ${attack}

An INVITE Flood Is Throttled While Customers Still Call
    ${attack}=    Run Attack    flood-invite
    Defence Should Hold    ${attack}

TLS Refuses Old Protocols And Weak Ciphers With A Valid Certificate
    ${attack}=    Run Attack    tls
    Defence Should Hold    ${attack}
