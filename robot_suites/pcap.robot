*** Settings ***
Documentation     The wire witness on its own: voipqa's analyzer judges small captures the
...               repository ships (robot_suites/data, written by data/make_pcaps.py with
...               voipqa's own SIP, RTP and pcap builders) the way it judges every run's capture.
...               It needs no lab and nothing outside the repository.
Library           qa.robot.VoipQA
Test Tags         wire

*** Variables ***
${DATA}           ${CURDIR}/data

*** Test Cases ***
Clean Call With Re-INVITE Has No Malformed SIP
    ${pcap}=    Analyze Pcap    ${DATA}/clean-call-reinvite.pcap
    Pcap Should Have No Malformed SIP    ${pcap}
    Pcap Should Have No Failed Calls    ${pcap}
    Call Should Have Media Both Ways    ${pcap}    reinvite-1@voipqa.test    min_packets=40

RFC 2833 Digits Are Read Off The Wire
    ${pcap}=    Analyze Pcap    ${DATA}/rfc2833-digits.pcap
    DTMF Seen On Wire Should Be    ${pcap}    dtmf-1@voipqa.test    6789123

A Declined Call Is A Failed Call
    ${pcap}=    Analyze Pcap    ${DATA}/declined-603.pcap
    Pcap Should Have No Malformed SIP    ${pcap}
    Run Keyword And Expect Error    *603*    Pcap Should Have No Failed Calls    ${pcap}

Malformed SIP Is Caught
    ${pcap}=    Analyze Pcap    ${DATA}/malformed-sip.pcap
    Run Keyword And Expect Error    *malformed*CSeq*    Pcap Should Have No Malformed SIP    ${pcap}
