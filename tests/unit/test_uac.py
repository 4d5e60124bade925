"""The customer's sans-I/O UAC (qa.customer.uac) with a fake clock and a scripted platform."""

from __future__ import annotations

import pytest

from qa.sip.timers import CancelTimer, Send, StartTimer
from qa.customer.uac import CallConfig, UacCall, UacRegister
from qa.sip import Request, Response, digest_response, make_response, parse_digest_challenge, parse_message

WALL0 = 1_800_000_000.0
PLATFORM = ("127.0.0.1", 5060)
SDP_PCMA = (b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n")
# Kamailio's double Record-Route of a TLS-in/UDP-out call, as the 2xx carries it
RR = ["<sip:127.0.0.1:5060;r2=on;lr;ftag=x>", "<sip:127.0.0.1:5061;transport=tls;r2=on;lr;ftag=x>"]
CONTACT = "<sip:1555000100@127.0.0.1:5070>"
CHALLENGE = 'Digest realm="voipqa.lab", nonce="nonce-1", qop="auth"'


def config(**kw) -> CallConfig:
    base = dict(from_user="1001", password="alice-pass-1001", to_user="1555000100",
                target_host="127.0.0.1", target_port=5060, local_port=40100, media_port=40200,
                duration_s=1.0)
    return CallConfig(**(base | kw))


def sent(actions) -> list[Request | Response]:
    return [parse_message(a.data) for a in actions if isinstance(a, Send)]


def sends(actions) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def timers(actions) -> dict:
    return {a.key[0]: a.delay for a in actions if isinstance(a, StartTimer)}


def reply(request: Request, status: int, *, headers=(), body: bytes = b"") -> bytes:
    tag = None if status == 100 else "platform-tag"
    return bytes(make_response(request, status, to_tag=tag, headers=list(headers), body=body))


def answer(request: Request) -> bytes:
    headers = [("Record-Route", ", ".join(RR)), ("Contact", CONTACT), ("Content-Type", "application/sdp")]
    return reply(request, 200, headers=headers, body=SDP_PCMA)


def start(cfg: CallConfig | None = None, kind=UacCall):
    uac = kind(cfg or config(), lambda: WALL0)
    actions = uac.start(0.0)
    (request,) = sent(actions)
    return uac, request, actions


def authenticated_call(cfg: CallConfig | None = None):
    """INVITE -> 407 -> INVITE with credentials; returns (uac, first, second INVITE)."""
    uac, first, _ = start(cfg)
    actions = uac.on_message(reply(first, 407, headers=[("Proxy-Authenticate", CHALLENGE)]), 0.05)
    ack, second = sent(actions)
    assert ack.method == "ACK" and second.method == "INVITE"
    return uac, first, second


def answered_call(cfg: CallConfig | None = None):
    uac, first, invite = authenticated_call(cfg)
    uac.on_message(reply(invite, 180), 0.3)
    actions = uac.on_message(answer(invite), 0.5)
    (ack,) = sent(actions)
    return uac, invite, ack, actions


def test_initial_invite_follows_rfc3261_8_1_1():
    uac, inv, actions = start()
    assert inv.method == "INVITE" and inv.uri == "sip:1555000100@127.0.0.1:5060"
    assert inv.top_via.transport == "UDP" and inv.top_via.branch.startswith("z9hG4bK")
    assert inv.from_tag and inv.to_tag is None and inv.cseq == (1, "INVITE")
    assert inv.headers.get("max-forwards") == "70"
    assert b"m=audio 40200 RTP/AVP 0 8 101" in inv.body
    assert uac.result.offered_codecs == ["PCMU", "PCMA", "telephone-event"]
    assert uac.result.via_sent.startswith("SIP/2.0/UDP 127.0.0.1:40100;branch=z9hG4bK")
    assert uac.result.started == WALL0 and uac.result.from_user == "1001"
    assert actions[0].addr == PLATFORM


def test_407_then_authenticated_invite_with_a_valid_digest():
    uac, first, second = authenticated_call()
    assert second.call_id == first.call_id and second.from_tag == first.from_tag
    assert second.cseq == (2, "INVITE") and second.top_via.branch != first.top_via.branch
    creds = parse_digest_challenge(second.headers.get("proxy-authorization"))
    expected = digest_response("1001", "alice-pass-1001", "voipqa.lab", "nonce-1", "INVITE",
                               first.uri, qop="auth", nc=creds["nc"], cnonce=creds["cnonce"])
    assert creds["response"] == expected and creds["uri"] == first.uri
    assert uac.result.challenges == 1 and uac.result.invites == 2


def test_the_407_is_acked_in_its_transaction():
    uac, first, _ = start()
    challenge = reply(first, 407, headers=[("Proxy-Authenticate", CHALLENGE)])
    actions = uac.on_message(challenge, 0.05)
    ack = sent(actions)[0]
    assert ack.top_via.branch == first.top_via.branch and ack.cseq == (1, "ACK")
    assert ack.to_tag == "platform-tag" and ack.uri == first.uri
    assert CancelTimer(("A", first.top_via.branch, "INVITE")) in actions
    assert timers(actions)["D"] == 32.0
    again = uac.on_message(challenge, 0.1)               # a retransmitted 407: ACK again only
    assert [m.method for m in sent(again)] == ["ACK"]


def test_full_call_180_200_ack_bye_200():
    uac, invite, ack, actions = answered_call()
    assert ack.uri == "sip:1555000100@127.0.0.1:5070"                      # the 2xx Contact
    assert ack.headers.get_all("route") == list(reversed(RR))             # §12.1.2
    assert ack.cseq == (2, "ACK") and ack.to_tag == "platform-tag"
    assert ack.top_via.branch != invite.top_via.branch                    # end-to-end ACK
    assert ack.headers.get("proxy-authorization") == invite.headers.get("proxy-authorization")
    assert sends(actions)[0].addr == ("127.0.0.1", 5061) and timers(actions)["hangup"] == 1.0
    bye_actions = uac.on_timer(("hangup",), 1.5)
    (bye,) = sent(bye_actions)
    assert bye.method == "BYE" and bye.cseq == (3, "BYE") and bye.uri == ack.uri
    assert bye.headers.get_all("route") == list(reversed(RR))
    assert not uac.done
    assert uac.on_message(reply(bye, 200), 1.6) == [CancelTimer(("E", bye.top_via.branch, "BYE")),
                                                      CancelTimer(("F", bye.top_via.branch, "BYE")),
                                                      StartTimer(("K", bye.top_via.branch, "BYE"), 5.0)]
    r = uac.result
    assert uac.done and r.final_code == 200 and r.bye_by == "caller" and r.error is None
    assert (r.pdd_ms, r.setup_ms, r.duration_s) == (300.0, 500.0, 1.0)
    assert (r.answered, r.ended) == (WALL0 + 0.5, WALL0 + 1.5)
    assert r.answered_codec == "PCMA" and r.provisional == [180] and r.record_route == RR
    assert r.transport_sent == "udp" and r.request_bytes > 300 and r.session_expires is None


def test_a_retransmitted_2xx_is_acked_again():
    uac, invite, ack, actions = answered_call()
    again = uac.on_message(answer(invite), 0.9)
    assert again == sends(actions)


def test_failure_final_is_acked_and_ends_the_call():
    uac, inv, _ = start()
    uac.on_message(reply(inv, 100), 0.01)
    actions = uac.on_message(reply(inv, 486), 0.2)
    (ack,) = sent(actions)
    assert ack.method == "ACK" and ack.top_via.branch == inv.top_via.branch
    assert uac.done and uac.result.final_code == 486 and uac.result.final_reason == "Busy Here"
    assert uac.result.ended == WALL0 + 0.2 and uac.result.answered is None


def test_a_second_challenge_for_the_same_request_is_the_outcome():
    uac, _, second = authenticated_call()
    actions = uac.on_message(reply(second, 407, headers=[("Proxy-Authenticate", CHALLENGE)]), 0.1)
    assert [m.method for m in sent(actions)] == ["ACK"]
    assert uac.done and uac.result.final_code == 407 and uac.result.challenges == 2
    assert uac.result.invites == 2


def test_udp_invite_retransmissions_timer_a_doubles_and_timer_b_times_out():
    uac, inv, actions = start()
    assert timers(actions) == {"A": 0.5, "B": 32.0}
    branch, delays = inv.top_via.branch, []
    for _ in range(6):
        out = uac.on_timer(("A", branch, "INVITE"), 0)
        assert [m.method for m in sent(out)] == ["INVITE"]
        delays.append(timers(out)["A"])
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    uac.on_timer(("B", branch, "INVITE"), 32.0)
    assert uac.done and uac.result.final_code is None and "Timer B" in uac.result.error
    assert uac.result.retransmissions == 6


def test_a_provisional_stops_timer_a():
    uac, inv, _ = start()
    actions = uac.on_message(reply(inv, 100), 0.1)
    assert actions == [CancelTimer(("A", inv.top_via.branch, "INVITE"))]
    assert uac.on_timer(("A", inv.top_via.branch, "INVITE"), 0.5) == []
    assert uac.on_timer(("B", inv.top_via.branch, "INVITE"), 32) == [] and not uac.done


def test_bye_retransmissions_timer_e_caps_at_t2():
    uac, *_ = answered_call()
    (bye,) = sent(uac.on_timer(("hangup",), 1.5))
    delays = [timers(uac.on_timer(("E", bye.top_via.branch, "BYE"), 0))["E"] for _ in range(4)]
    assert delays == [1.0, 2.0, 4.0, 4.0]
    uac.on_timer(("F", bye.top_via.branch, "BYE"), 33.5)
    assert uac.done and "Timer F" in uac.result.error and uac.result.final_code == 200


def test_tcp_and_tls_have_no_retransmission_timers():
    for transport in ("tcp", "tls"):
        _, inv, actions = start(config(transport=transport))
        assert timers(actions) == {"B": 32.0}
        assert inv.top_via.transport == transport.upper()
        assert inv.headers.get("contact").endswith(f";transport={transport}>")


def test_callee_bye_is_answered_and_ends_the_call():
    uac, invite, ack, _ = answered_call()
    bye = (f"BYE sip:1001@127.0.0.1:40100 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKp1\r\n"
           f"From: {ack.headers.get('to')}\r\nTo: {ack.headers.get('from')}\r\nCall-ID: {invite.call_id}\r\n"
           f"CSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n").encode()
    actions = uac.on_message(bye, 0.8)
    assert CancelTimer(("hangup",)) in actions
    (ok,) = sent(actions)
    assert ok.status == 200 and ok.cseq == (7, "BYE")
    assert [a.addr for a in actions if isinstance(a, Send)] == [PLATFORM]
    assert uac.done and uac.result.bye_by == "callee" and uac.result.duration_s == 0.3
    assert uac.on_timer(("hangup",), 1.5) == []


def test_strict_router_in_the_route_set():
    uac, first, _ = start()
    headers = [("Record-Route", "<sip:10.0.0.1:5060>"), ("Contact", CONTACT)]
    (ack,) = sent(uac.on_message(reply(first, 200, headers=headers), 0.2))
    assert ack.uri == "sip:10.0.0.1:5060"                       # §12.2.1.1 strict routing
    assert ack.headers.get_all("route") == [CONTACT]


def test_abort_while_ringing_sends_cancel():
    uac, inv, _ = start()
    uac.on_message(reply(inv, 180), 0.2)
    (cancel,) = sent(uac.abort(5.0, "deadline"))
    assert cancel.method == "CANCEL" and cancel.top_via.branch == inv.top_via.branch
    assert cancel.cseq == (1, "CANCEL") and cancel.uri == inv.uri
    assert uac.done and uac.result.error == "deadline"


def test_replay_credentials_sends_the_old_authorization_on_a_new_call_id():
    uac, invite, ack, _ = answered_call(config(replay_credentials=True))
    (bye,) = sent(uac.on_timer(("hangup",), 1.5))
    actions = uac.on_message(reply(bye, 200), 1.6)
    (replay,) = sent(actions)
    assert not uac.done
    assert replay.method == "INVITE" and replay.call_id != invite.call_id and replay.cseq == (1, "INVITE")
    assert replay.headers.get("proxy-authorization") == invite.headers.get("proxy-authorization")
    assert uac.result.replay_call_id == replay.call_id
    stale = 'Digest realm="voipqa.lab", nonce="nonce-2", qop="auth", stale=true'
    out = uac.on_message(reply(replay, 407, headers=[("Proxy-Authenticate", stale)]), 1.7)
    assert [m.method for m in sent(out)] == ["ACK"]
    r = uac.result
    assert uac.done and (r.rechallenged, r.stale, r.replay_code) == (True, True, 407)
    assert r.call_id == invite.call_id and r.final_code == 200 and r.challenges == 1


def test_an_accepted_replay_is_acked_and_hung_up():
    uac, invite, ack, _ = answered_call(config(replay_credentials=True))
    (bye,) = sent(uac.on_timer(("hangup",), 1.5))
    (replay,) = sent(uac.on_message(reply(bye, 200), 1.6))
    ack2, bye2 = sent(uac.on_message(answer(replay), 1.7))
    assert (ack2.method, bye2.method) == ("ACK", "BYE") and bye2.call_id == replay.call_id
    assert not uac.done
    uac.on_message(reply(bye2, 200), 1.8)
    r = uac.result
    assert uac.done and (r.rechallenged, r.stale, r.replay_code) == (False, None, 200)


def register_started(**kw):
    return start(config(**kw), kind=UacRegister)


def test_register_401_authorization_200():
    uac, reg, _ = register_started()
    assert reg.method == "REGISTER" and reg.uri == "sip:127.0.0.1:5060"
    assert reg.to_addr.uri == reg.from_addr.uri == "sip:1001@127.0.0.1:5060"
    assert reg.headers.get("expires") == "60"
    actions = uac.on_message(reply(reg, 401, headers=[("WWW-Authenticate", CHALLENGE)]), 0.1)
    assert timers(actions) == {"K": 5.0, "E": 0.5, "F": 32.0}
    (second,) = sent(actions)
    creds = parse_digest_challenge(second.headers.get("authorization"))
    assert creds["response"] == digest_response("1001", "alice-pass-1001", "voipqa.lab", "nonce-1",
                                                "REGISTER", reg.uri, qop="auth", nc=creds["nc"],
                                                cnonce=creds["cnonce"])
    assert second.cseq == (2, "REGISTER") and second.call_id == reg.call_id
    uac.on_message(reply(second, 200), 0.2)
    assert uac.done and uac.result.final_code == 200 and uac.result.method == "REGISTER"
    assert uac.result.challenges == 1


@pytest.mark.parametrize("code", [403, 401])
def test_register_refused(code):
    uac, reg, _ = register_started(password="wrong")
    (second,) = sent(uac.on_message(reply(reg, 401, headers=[("WWW-Authenticate", CHALLENGE)]), 0.1))
    headers = [("WWW-Authenticate", CHALLENGE)] if code == 401 else []
    uac.on_message(reply(second, code, headers=headers), 0.2)
    assert uac.done and uac.result.final_code == code


def test_register_replay_reuses_the_authorization_with_the_next_cseq():
    uac, reg, _ = register_started(replay_credentials=True)
    (second,) = sent(uac.on_message(reply(reg, 401, headers=[("WWW-Authenticate", CHALLENGE)]), 0.1))
    (replay,) = sent(uac.on_message(reply(second, 200), 0.2))
    assert replay.cseq == (3, "REGISTER") and replay.call_id == reg.call_id
    assert replay.headers.get("authorization") == second.headers.get("authorization")
    uac.on_message(reply(replay, 200), 0.3)
    r = uac.result
    assert uac.done and (r.rechallenged, r.stale, r.replay_code) == (False, None, 200)


def test_garbage_is_counted_not_fatal():
    uac, inv, _ = start()
    assert uac.on_message(b"not sip at all\r\n\r\n", 0.1) == []
    assert uac.result.parse_errors and not uac.done


# --- every answered call carries media ------------------------------------------------------
def test_the_answer_starts_rtp_in_its_codec_and_the_bye_stops_it():
    """The Python customer (TLS, replays) plays the answer's first codec to the answer's
    address for the talk time, like the SIPp customer; our BYE stops it."""
    from qa.customer.uac import StartMedia, StopMedia

    uac, invite, ack, actions = answered_call()
    assert StartMedia(("127.0.0.1", 7000), "PCMA", 8, 1.0) in actions
    assert isinstance(uac.on_timer(("hangup",), 1.5)[0], StopMedia)


def test_the_callee_bye_stops_rtp():
    from qa.customer.uac import StopMedia

    uac, invite, ack, _ = answered_call()
    bye = ("BYE sip:1001@127.0.0.1:40100 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKb1\r\n"
           f"From: <sip:1555000100@127.0.0.1>;tag=platform-tag\r\nTo: {invite.headers.get('from')}\r\n"
           f"Call-ID: {invite.call_id}\r\nCSeq: 9 BYE\r\nContent-Length: 0\r\n\r\n").encode()
    assert any(isinstance(a, StopMedia) for a in uac.on_message(bye, 0.8))


@pytest.mark.parametrize("body, why", [
    (b"", "none (the answer had no SDP)"),
    (SDP_PCMA.replace(b"m=audio 7000", b"m=audio 0"), "none (the answer has no audio stream)"),
    (SDP_PCMA + b"a=inactive\r\n", "none (the answer's audio is inactive)"),
    (SDP_PCMA.replace(b"RTP/AVP 8 101", b"RTP/AVP 111 101").replace(b"a=rtpmap:8 PCMA", b"a=rtpmap:111 opus"),
     "none (opus (PT 111): no audio for it)"),
])
def test_an_answer_without_playable_audio_says_why(body, why):
    from qa.customer.uac import StartMedia

    uac, first, invite = authenticated_call()
    headers = [("Record-Route", ", ".join(RR)), ("Contact", CONTACT)] + (
        [("Content-Type", "application/sdp")] if body else [])
    actions = uac.on_message(reply(invite, 200, headers=headers, body=body), 0.5)
    assert not any(isinstance(a, StartMedia) for a in actions)
    assert uac.result.media_sent == why


def test_media_none_sends_nothing():
    from qa.customer.uac import StartMedia

    uac, invite, ack, actions = answered_call(config(send_media=False))
    assert not any(isinstance(a, StartMedia) for a in actions)
    assert uac.result.media_sent == "none (media=none)"
