"""The judging rules: each witness's disagreement is named, agreement passes."""

from qa.cases import CallRecord, Expectation, judge
from qa.cases import checks


def answered(**over) -> CallRecord:
    rec = CallRecord(case="c", call_id="abc@h", from_="1001", to="1555000100", final_code=200,
                     started=100.0, answered=100.2, ended=103.2, duration_s=3.0,
                     carrier={"call_id": "abc@h", "final_code": 200, "duration_s": 3.05}, carrier_code=200,
                     cdr={"call_id": "abc@h", "from_user": "1001", "to_user": "1555000100", "duration": 3.1,
                          "sip_code": 200, "count": 1})
    for k, v in over.items():
        setattr(rec, k, v)
    return rec


def test_agreeing_witnesses_pass():
    rec = judge(answered(), Expectation(final_code=200, carrier_sees=True))
    assert rec.verdict == "pass", rec.reasons


def test_wrong_final_code_names_the_customer():
    rec = judge(answered(final_code=486), Expectation(final_code=200))
    assert rec.verdict == "fail"
    assert any(r.startswith("customer: final response 486, expected 200") for r in rec.reasons)


def test_missing_cdr_for_answered_call_names_the_platform():
    assert checks.platform_cdr(answered(cdr=None)) == ["platform: no CDR for an answered call"]


def test_cdr_duration_outside_tolerance():
    reasons = checks.platform_cdr(answered(cdr={"duration": 5.5, "sip_code": 200, "count": 1}))
    assert reasons and "CDR duration 5.50 s" in reasons[0] and "3.00 s" in reasons[0]


def test_cdr_duration_inside_tolerance():
    assert checks.platform_cdr(answered(cdr={"duration": 3.9, "sip_code": 200, "count": 1})) == []


def test_duplicate_cdr_and_wrong_parties():
    reasons = checks.platform_cdr(answered(cdr={"duration": 3.0, "sip_code": 200, "count": 2,
                                                "from_user": "1004", "to_user": "999"}))
    assert any("2 CDRs" in r for r in reasons)
    assert any("CDR from 1004" in r for r in reasons)
    assert any("CDR to 999" in r for r in reasons)


def test_failed_call_with_billed_seconds():
    rec = answered(final_code=402, duration_s=None, cdr={"duration": 12, "sip_code": 402, "count": 1})
    assert checks.platform_cdr(rec) == ["platform: failed call billed 12.00 s"]


def test_cdr_code_disagrees_with_customer():
    rec = answered(final_code=403, duration_s=None, cdr={"duration": 0, "sip_code": 402, "count": 1})
    assert checks.platform_cdr(rec) == ["platform: CDR says 402, the customer got 403"]


def test_carrier_must_not_see_rejected_call():
    rec = answered(final_code=402)
    assert checks.carrier_saw(rec, False)[0].startswith("carrier: saw the INVITE")
    assert checks.carrier_saw(answered(carrier=None), True) == ["carrier: never saw the INVITE"]


def test_carrier_duration_disagreement():
    rec = answered(carrier={"duration_s": 9.0})
    assert checks.carrier_duration(rec) == ["carrier: measured 9.00 s, customer 3.00 s"]


def test_the_record_says_what_it_was_judged_against() -> None:
    """A passing call answered 403 explains itself: the case expected the 403 and no carrier."""
    from qa.cases.checks import Expectation

    blocked = Expectation(final_code=403, carrier_sees=False)
    assert blocked.to_json() == {"final_code": 403, "carrier_sees": False, "cdr": True, "media": None}
    assert Expectation(final_code=None, check_cdr=False).to_json(media="both") == \
        {"final_code": None, "carrier_sees": None, "cdr": False, "media": "both"}


def test_a_timer_that_fires_early_fails_its_window():
    """Session expiry at 90 s ending the call after 20 s is a regression, not a pass."""
    early = answered(duration_s=20.0)
    assert checks.duration_at_most(early, 100) == []
    assert checks.duration_at_most(early, 100, at_least=58) == [
        "customer: call lasted 20.00 s, expected between 58 and 100 s"]
    assert checks.duration_at_most(answered(duration_s=90.2), 100, at_least=58) == []
    assert checks.duration_at_most(answered(duration_s=None), 100, at_least=58) == [
        "customer: call lasted None s, expected between 58 and 100 s"]


def test_an_invite_timer_shorter_than_configured_fails_its_window():
    quick = answered(final_code=408, answered=None, ended=101.0)      # 408 after 1 s
    assert checks.final_within(quick, 25) == []
    assert checks.final_within(quick, 25, at_least=14) == [
        "customer: final response after 1.00 s, expected between 14 and 25 s"]
    assert checks.final_within(answered(final_code=408, answered=None, ended=115.0), 25, at_least=14) == []
    assert checks.final_within(answered(final_code=408, answered=None, ended=130.0), 25) == [
        "customer: final response after 30.00 s, expected within 25 s"]


def test_the_cdr_end_reason_is_named_or_its_absence_is():
    cdr = {"call_id": "abc@h", "count": 1}
    assert checks.cdr_end_reason(answered(cdr=cdr | {"end_reason": "session-expired"}), "session-expired") == []
    assert checks.cdr_end_reason(answered(cdr=cdr | {"end_reason": "caller-bye"}), "media-timeout") == [
        "platform: CDR end reason caller-bye, expected media-timeout"]
    assert checks.cdr_end_reason(answered(cdr=cdr), "media-timeout") == [
        "platform: the CDR has no end_reason column, expected media-timeout"]
    assert checks.cdr_end_reason(answered(cdr=None), "media-timeout") == [
        "platform: no CDR, expected one ended by media-timeout"]
