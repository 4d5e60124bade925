*** Settings ***
Documentation     The wire witness on its own: voipqa's analyzer judges public SIP
...               captures (../shared/corpus/pcaps) the way it judges every run's capture.
Library           qa.robot.VoipQA
Test Tags         wire

*** Variables ***
${CORPUS}         ${CURDIR}/../../shared/corpus/pcaps

*** Test Cases ***
Clean Call With Re-INVITE Has No Malformed SIP
    ${pcap}=    Analyze Pcap    ${CORPUS}/register-invite-reinvite-bye.pcap
    Pcap Should Have No Malformed SIP    ${pcap}
    Call Should Have Media Both Ways    ${pcap}    1-3812687@127.0.0.1

RFC 2833 Digits Are Read Off The Wire
    ${pcap}=    Analyze Pcap    ${CORPUS}/SIP_DTMF2.cap
    DTMF Seen On Wire Should Be    ${pcap}    25672@192.168.105.110    6789123

A Declined Call Is A Failed Call
    ${pcap}=    Analyze Pcap    ${CORPUS}/SIP_DTMF2.cap
    Run Keyword And Expect Error    *603*    Pcap Should Have No Failed Calls    ${pcap}

Malformed SIP Is Caught
    ${pcap}=    Analyze Pcap    ${CORPUS}/sngrep-aaa.pcap
    Run Keyword And Expect Error    *malformed*    Pcap Should Have No Malformed SIP    ${pcap}
