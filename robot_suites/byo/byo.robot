*** Settings ***
Documentation     Bring your own SIPp scenario (docs/byo-sipp.md): a team's own SIPp XML, run as
...               it is against the platform under test. voipqa supplies the target, the
...               account (-au/-ap, the -inf row), the called number (-s), free ports and the
...               traces, and judges the call on the customer, carrier and CDR witnesses (the
...               wire witness is joined after the run from the capture, as for every call).
Library           qa.robot.VoipQA
Test Tags         byo

*** Variables ***
${ECHO}           1555000100
${SCENARIO}       ../../sipp/examples/uac_basic.xml

*** Test Cases ***
Own UAC Scenario Is Answered, Relayed And Billed
    ${call}=    Run SIPp Scenario    ${SCENARIO}    expect=200    service=${ECHO}    timeout=20s
    Call Should Be Answered    ${call}
    Carrier Should Have Seen Call    ${call}
    Platform CDR Should Match Call    ${call}    tolerance=1s
    Call Should Pass    ${call}

Broken Scenario Is Refused In One Line With Its Position
    Run Keyword And Expect Error    *broken.xml:8:3: invalid XML: mismatched tag*
    ...    Run SIPp Scenario    broken.xml
