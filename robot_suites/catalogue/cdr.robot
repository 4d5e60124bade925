*** Settings ***
Documentation     Billing: the platform's CDRs reconciled with what the customer and the
...               carrier saw — one CDR per answered call, parties and duration right,
...               failed calls with their code and no billable seconds.
Resource          resources.resource
Test Tags         cdr

*** Test Cases ***
Answered Call Has Exactly One CDR With The Right Parties And Duration
    ${call}=    Place Call    ${DAVE}    ${ECHO}    duration=4s    expect=200    carrier_sees=True
    Platform CDR Should Match Call    ${call}    tolerance=1s
    Platform CDR End Reason Should Be    ${call}    caller-bye
    Call Should Pass    ${call}

Carrier And Customer Measure The Same Duration
    ${call}=    Place Call    ${DAVE}    ${ECHO}    duration=3s    expect=200    carrier_sees=True
    Carrier Duration Should Match Call    ${call}    tolerance=1s
    Call Should Pass    ${call}

Busy Call Carries 486 And No Billable Duration
    ${call}=    Place Call    ${DAVE}    ${BUSY}    expect=486    carrier_sees=True
    Platform CDR Should Have Code    ${call}    486
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

Call The Carrier Hangs Up Is Billed To The Carrier's BYE
    ${call}=    Place Call    ${DAVE}    ${CARRIER_HANGUP}    duration=10s    expect=200    carrier_sees=True
    Call Should Have Been Ended By    ${call}    callee
    Platform CDR Should Match Call    ${call}    tolerance=1s
    Platform CDR End Reason Should Be    ${call}    callee-bye
    Call Should Pass    ${call}

Carrier Saw The Account The Platform Routed
    ${call}=    Place Call    ${DAVE}    ${ECHO}    expect=200    carrier_sees=True
    Carrier Should Have Received Header    ${call}    X-VoipQA-Account    ${DAVE}
    Call Should Pass    ${call}

Late Answer Is Billed From The Answer, Not The INVITE
    ${call}=    Place Call    ${DAVE}    ${ANSWER_LATE}    duration=2s    expect=200    carrier_sees=True
    Platform CDR Should Match Call    ${call}    tolerance=1s
    Call Should Pass    ${call}

Caller Cancelling While Ringing Gets 487 And Is Not Billed
    ${call}=    Place Call    ${DAVE}    ${RING_FOREVER}    cancel_after=2s    expect=487    carrier_sees=True
    Carrier Should Say Call Ended By    ${call}    cancel
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

Carrier Decline Is Relayed As 603 And Not Billed
    ${call}=    Place Call    ${DAVE}    ${DECLINE}    expect=603    carrier_sees=True
    Platform CDR Should Have Code    ${call}    603
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}

Unknown Number At The Carrier Is Relayed As 404 And Not Billed
    ${call}=    Place Call    ${DAVE}    ${NOT_FOUND}    expect=404    carrier_sees=True
    Platform Should Have No Billable CDR    ${call}
    Call Should Pass    ${call}
