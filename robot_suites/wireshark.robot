*** Settings ***
Documentation     Wireshark display filters as assertions: each keyword dissects only the
...               frames of one call of the run's capture (its SIP on every hop and its
...               RTP), with Wireshark's full dissector tree, through pyshark. Run with
...               ``voipqa run`` (which captures the run).
Library           qa.robot.VoipQA
Test Tags         wireshark

*** Variables ***
${ALICE}             1001
${ECHO}              1555000100

*** Test Cases ***
The Platform Answers PCMA When PCMA Is Offered, By Display Filter
    ${call}=    Place Call    ${ALICE}    ${ECHO}    codecs=PCMA,telephone-event    duration=1s
    Call Should Pass    ${call}
    Capture Should Match    ${call}    sip.Status-Code == 200 && sdp.media.format contains "PCMA"
    Capture Should Match    ${call}    sip.Method == "INVITE" && !(sdp.media.format contains "PCMU")
    Capture Should Not Match    ${call}    sip.Status-Code >= 500
    ${transports}=    Wireshark Fields    ${call}    sip.Via.transport
    Should Contain    ${transports}    UDP
    Wireshark Field Should Be    ${call}    sip.CSeq.method    INVITE
