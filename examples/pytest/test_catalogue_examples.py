"""voipqa from pytest: a few of the catalogue's cases (robot_suites/catalogue) as plain tests.

The plugin comes with voipqa (the ``pytest11`` entry point); each fixture is documented in
docs/pytest.md. Against the lab (the running one, or one started for the session):

    pytest examples/pytest -p voipqa
    pytest examples/pytest --voipqa-env staging --junitxml results/pytest/junit.xml

Each call is judged on its witnesses (the customer, the carrier, the platform's CDR; the
wire through ``voipqa_capture``'s display filters); ``call.passed`` is that verdict and
``call.reasons`` says which witness disagreed. Every call is written to ``results/pytest/calls.jsonl``, as
``voipqa run`` writes it.
"""

ALICE = "1001"            # an account with credit
ZERO_BALANCE = "1002"
ECHO = "1555000100"       # the carrier answers and echoes the media
DTMF_SINK = "1555008000"  # the carrier answers and records the digits it hears
BLOCKED = "19005550100"   # premium rate: refused by prefix


def test_an_authenticated_call_is_answered_and_billed(place_call):
    call = place_call(ALICE, ECHO, duration_s=2, carrier_sees=True)
    assert call.passed, call.reasons
    assert call.cdr is not None and call.cdr["duration"] >= 1


def test_a_wrong_password_is_refused_with_403(place_call):
    call = place_call(ALICE, ECHO, password="not-the-password", expect=403, carrier_sees=False)
    assert call.passed, call.reasons


def test_a_zero_balance_gets_402_and_never_reaches_the_carrier(place_call):
    call = place_call(ZERO_BALANCE, ECHO, expect=402, carrier_sees=False)
    assert call.passed, call.reasons


def test_a_blocked_prefix_is_refused_and_not_billed(place_call):
    call = place_call(ALICE, BLOCKED, expect=403, carrier_sees=False)
    assert call.passed, call.reasons


def test_rfc4733_digits_reach_the_carrier(place_call):
    call = place_call(ALICE, DTMF_SINK, dtmf="1234#", dtmf_mode="rfc4733")
    assert call.passed, call.reasons
    assert call.dtmf_heard == "1234#"


def test_the_answer_is_pcma_when_pcma_is_offered_by_display_filter(place_call, voipqa_capture):
    call = place_call(ALICE, ECHO, codecs="PCMA,telephone-event")
    assert call.passed, call.reasons
    voipqa_capture.should_match(call, 'sip.Status-Code == 200 && sdp.media.format contains "PCMA"')
    voipqa_capture.should_not_match(call, "sip.Status-Code >= 500")
