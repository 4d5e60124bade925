*** Settings ***
Documentation     The performance half, short enough for every pipeline: a steady load
...               through the platform under test, judged on its pass criteria (ASR,
...               failed calls, PDD and setup percentiles, retransmissions) and on its
...               CDRs (every answered call billed once). The suite runs alone, after
...               every other case (``Execution exclusive``): a load run measures the
...               platform and would disturb the cases beside it. Longer runs:
...               ``voipqa load run stress|load|soak|spike``.
Library           qa.robot.VoipQA
Metadata          Execution    exclusive
Test Tags         load

*** Test Cases ***
The Platform Holds A Short Steady Load With Every Call Billed
    ${summary}=    Run Load Profile    ${CURDIR}/smoke.yaml
    Load Criteria Should Pass    ${summary}
    CDR Loss Should Be At Most    ${summary}    0
    Should Be True    ${summary}[calls][attempted] >= 380    about 20 calls/s for 20 s
