"""The real telnyx SDK against the simulator: every endpoint of the reference answers, parsed by the SDK,
and every answer and error body matches the OpenAPI extract."""

from __future__ import annotations

import httpx
import pytest
import telnyx

from tests.openapi_contract import assert_matches_spec


def raw_call(method, *args, spec_path: str, http: str = "post", **kwargs):
    """Call an SDK method through with_raw_response; check the body against the spec; return (parsed, json)."""
    raw = method(*args, **kwargs)
    body = raw.http_response.json() if raw.http_response.content else None
    assert_matches_spec(spec_path, http, raw.http_response.status_code, body)
    return raw.parse(), body


def expect_error(call, spec_path: str, status: int, code: str, http: str = "post"):
    with pytest.raises(telnyx.APIStatusError) as caught:
        call()
    error = caught.value
    assert error.status_code == status
    body = error.response.json()
    assert_matches_spec(spec_path, http, status, body)
    assert body["errors"][0]["code"] == code, body
    return body["errors"][0]


@pytest.fixture
def conference(simulator, telnyx_sdk):
    host = simulator.call("+15550001", "+15550100")
    created, body = raw_call(
        telnyx_sdk.conferences.with_raw_response.create,
        spec_path="/conferences",
        call_control_id=host["call_control_id"],
        name="Weekly sync",
        beep_enabled="always",
    )
    assert created.data.name == "Weekly sync" and created.data.status == "in_progress"
    guest = simulator.call("+15550002", "+15550100")
    raw_call(
        telnyx_sdk.conferences.actions.with_raw_response.join,
        created.data.id,
        spec_path="/conferences/{id}/actions/join",
        call_control_id=guest["call_control_id"],
    )
    return {"id": created.data.id, "host": host["call_control_id"], "guest": guest["call_control_id"]}


def participants(simulator, conference_id: str) -> dict[str, dict]:
    conf = next(c for c in simulator.sim_state()["conferences"] if c["id"] == conference_id)
    return {p["call_control_id"]: p for p in conf["participants"]}


def test_list_retrieve_and_participants(simulator, telnyx_sdk, conference):
    listed, body = raw_call(
        telnyx_sdk.conferences.with_raw_response.list, spec_path="/conferences", http="get"
    )
    assert [c.id for c in listed.data] == [conference["id"]]
    assert body["meta"]["total_results"] == 1
    named, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.list,
        spec_path="/conferences",
        http="get",
        filter={"name": "nope"},
    )
    assert named.data == []
    retrieved, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.retrieve,
        conference["id"],
        spec_path="/conferences/{id}",
        http="get",
    )
    assert retrieved.data.id == conference["id"]
    legs, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.list_participants,
        conference["id"],
        spec_path="/conferences/{conference_id}/participants",
        http="get",
    )
    assert {p.call_control_id for p in legs.data} == {conference["host"], conference["guest"]}
    one, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.retrieve_participant,
        conference["guest"],
        id=conference["id"],
        spec_path="/conferences/{id}/participants/{participant_id}",
        http="get",
    )
    assert one.data.call_control_id == conference["guest"]
    updated, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.update_participant,
        conference["guest"],
        id=conference["id"],
        end_conference_on_exit=True,
        spec_path="/conferences/{id}/participants/{participant_id}",
        http="patch",
    )
    assert updated.data.end_conference_on_exit is True


def test_paging_with_page_number_and_size(simulator, telnyx_sdk):
    for index in range(3):
        call = simulator.call(f"+1555000{index}", "+15550100")
        telnyx_sdk.conferences.create(call_control_id=call["call_control_id"], name=f"room {index}")
    first = telnyx_sdk.conferences.list(page_size=2)
    assert len(first.data) == 2 and first.meta.total_pages == 2
    assert len(list(first.iter_pages())) == 2
    assert len(telnyx_sdk.conferences.list(page_number=2, page_size=2).data) == 1
    assert len(telnyx_sdk.conferences.list(filter={"status": "completed"}).data) == 0


def test_mute_hold_and_update_keep_state_without_webhooks(simulator, telnyx_sdk, conference):
    actions = telnyx_sdk.conferences.actions.with_raw_response
    cid, guest = conference["id"], conference["guest"]
    raw_call(actions.mute, cid, call_control_ids=[guest], spec_path="/conferences/{id}/actions/mute")
    raw_call(
        actions.hold,
        cid,
        call_control_ids=[guest],
        audio_url="https://example.com/hold.mp3",
        spec_path="/conferences/{id}/actions/hold",
    )
    raw_call(
        actions.update,
        cid,
        call_control_id=conference["host"],
        supervisor_role="whisper",
        whisper_call_control_ids=[guest],
        spec_path="/conferences/{id}/actions/update",
    )
    legs = participants(simulator, cid)
    assert legs[guest]["muted"] is True and legs[guest]["on_hold"] is True
    assert legs[conference["host"]]["supervisor_role"] == "whisper"
    assert legs[conference["host"]]["whisper_call_control_ids"] == [guest]
    listed = {p.call_control_id: p for p in telnyx_sdk.conferences.list_participants(cid).data}
    assert listed[guest].muted is True and listed[guest].on_hold is True
    raw_call(actions.unmute, cid, spec_path="/conferences/{id}/actions/unmute")
    raw_call(actions.unhold, cid, call_control_ids=[guest], spec_path="/conferences/{id}/actions/unhold")
    legs = participants(simulator, cid)
    assert legs[guest]["muted"] is False and legs[guest]["on_hold"] is False
    sent = {w["event_type"] for w in simulator.sim_state()["webhooks"]}
    assert not any("mute" in t or "hold" in t or "update" in t for t in sent)


def test_media_recording_dtmf_and_gather(simulator, telnyx_sdk, conference):
    actions = telnyx_sdk.conferences.actions.with_raw_response
    cid = conference["id"]
    raw_call(
        actions.play, cid, audio_url="https://example.com/a.mp3", spec_path="/conferences/{id}/actions/play"
    )
    raw_call(actions.stop, cid, spec_path="/conferences/{id}/actions/stop")
    raw_call(
        actions.speak,
        cid,
        payload="Hello",
        voice="female",
        language="en-US",
        spec_path="/conferences/{id}/actions/speak",
    )
    raw_call(actions.record_start, cid, format="mp3", spec_path="/conferences/{id}/actions/record_start")
    raw_call(actions.record_pause, cid, spec_path="/conferences/{id}/actions/record_pause")
    raw_call(actions.record_resume, cid, spec_path="/conferences/{id}/actions/record_resume")
    raw_call(actions.record_stop, cid, spec_path="/conferences/{id}/actions/record_stop")
    raw_call(actions.send_dtmf, cid, digits="1234#", spec_path="/conferences/{id}/actions/send_dtmf")
    raw_call(
        actions.gather_dtmf_audio,
        cid,
        call_control_id=conference["guest"],
        audio_url="https://example.com/prompt.mp3",
        spec_path="/conferences/{id}/actions/gather_using_audio",
    )
    state = simulator.sim_state()
    (conf,) = state["conferences"]
    assert len(conf["recordings"]) == 1 and conf["recordings"][0]["format"] == "mp3"
    assert state["dtmf"][0]["digits"] == "1234#"
    types = [w["event_type"] for w in state["webhooks"]]
    for expected in (
        "conference.playback.started",
        "conference.playback.ended",
        "conference.speak.started",
        "conference.recording.saved",
    ):
        assert expected in types


def test_leave_and_end(simulator, telnyx_sdk, conference):
    actions = telnyx_sdk.conferences.actions.with_raw_response
    cid = conference["id"]
    raw_call(
        actions.leave, cid, call_control_id=conference["guest"], spec_path="/conferences/{id}/actions/leave"
    )
    assert participants(simulator, cid)[conference["guest"]]["status"] == "left"
    raw_call(actions.end_conference, cid, spec_path="/conferences/{id}/actions/end")
    assert telnyx_sdk.conferences.retrieve(cid).data.status == "completed"
    expect_error(
        lambda: telnyx_sdk.conferences.actions.mute(cid), "/conferences/{id}/actions/mute", 422, "90019"
    )
    expect_error(
        lambda: telnyx_sdk.conferences.actions.join(cid, call_control_id=conference["guest"]),
        "/conferences/{id}/actions/join",
        422,
        "90019",
    )


def test_call_commands_and_queues(simulator, telnyx_sdk):
    ringing = simulator.inbound("+15550003", "+15550100")
    ccid = ringing["call_control_id"]
    expect_error(
        lambda: telnyx_sdk.calls.actions.enqueue(ccid, queue_name="support"),
        "/calls/{call_control_id}/actions/enqueue",
        422,
        "90034",
    )
    raw_call(
        telnyx_sdk.calls.actions.with_raw_response.answer,
        ccid,
        spec_path="/calls/{call_control_id}/actions/answer",
    )
    raw_call(
        telnyx_sdk.calls.actions.with_raw_response.enqueue,
        ccid,
        queue_name="support",
        spec_path="/calls/{call_control_id}/actions/enqueue",
    )
    expect_error(
        lambda: telnyx_sdk.calls.actions.enqueue(ccid, queue_name="support"),
        "/calls/{call_control_id}/actions/enqueue",
        422,
        "90038",
    )
    queues, _ = raw_call(telnyx_sdk.queues.with_raw_response.list, spec_path="/queues", http="get")
    assert [(q.name, q.current_size) for q in queues.data] == [("support", 1)]
    queue, _ = raw_call(
        telnyx_sdk.queues.with_raw_response.retrieve, "support", spec_path="/queues/{queue_name}", http="get"
    )
    assert queue.data.current_size == 1
    calls, _ = raw_call(
        telnyx_sdk.queues.calls.with_raw_response.list,
        "support",
        spec_path="/queues/{queue_name}/calls",
        http="get",
    )
    assert calls.data[0].call_control_id == ccid and calls.data[0].queue_position == 1
    one, _ = raw_call(
        telnyx_sdk.queues.calls.with_raw_response.retrieve,
        ccid,
        queue_name="support",
        spec_path="/queues/{queue_name}/calls/{call_control_id}",
        http="get",
    )
    assert one.data.is_alive is True
    raw_call(
        telnyx_sdk.calls.actions.with_raw_response.leave_queue,
        ccid,
        spec_path="/calls/{call_control_id}/actions/leave_queue",
    )
    assert telnyx_sdk.queues.retrieve("support").data.current_size == 0
    raw_call(
        telnyx_sdk.calls.actions.with_raw_response.hangup,
        ccid,
        spec_path="/calls/{call_control_id}/actions/hangup",
    )
    expect_error(
        lambda: telnyx_sdk.calls.actions.hangup(ccid), "/calls/{call_control_id}/actions/hangup", 422, "90018"
    )
    types = [w["event_type"] for w in simulator.sim_state()["webhooks"]]
    assert types == ["call.initiated", "call.answered", "call.enqueued", "call.dequeued", "call.hangup"]


def test_error_codes_of_the_spec(simulator, telnyx_sdk):
    expect_error(
        lambda: telnyx_sdk.conferences.retrieve("no-such-conference"),
        "/conferences/{id}",
        404,
        "90058",
        "get",
    )
    host = simulator.call()["call_control_id"]
    telnyx_sdk.conferences.create(call_control_id=host, name="Unique", max_participants=2)
    other = simulator.call()["call_control_id"]
    expect_error(
        lambda: telnyx_sdk.conferences.create(call_control_id=other, name="Unique"),
        "/conferences",
        422,
        "90033",
    )
    conference_id = telnyx_sdk.conferences.list().data[0].id
    telnyx_sdk.conferences.actions.join(conference_id, call_control_id=other)
    third = simulator.call()["call_control_id"]
    expect_error(
        lambda: telnyx_sdk.conferences.actions.join(conference_id, call_control_id=third),
        "/conferences/{id}/actions/join",
        422,
        "90032",
    )
    simulator.hangup(third)
    expect_error(
        lambda: telnyx_sdk.conferences.actions.join(conference_id, call_control_id=third),
        "/conferences/{id}/actions/join",
        422,
        "90018",
    )


def test_requests_without_the_bearer_key_get_401(simulator):
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        response = httpx.get(f"{simulator.base_url}/conferences", headers=headers)
        assert response.status_code == 401
        assert_matches_spec("/conferences", "get", 401, response.json())
        assert response.json()["errors"][0]["code"] == "10009"


def test_command_id_repeats_within_a_minute_are_ignored(simulator, telnyx_sdk):
    ringing = simulator.inbound("+15550003", "+15550100")["call_control_id"]
    telnyx_sdk.calls.actions.answer(ringing, command_id="answer-1")
    telnyx_sdk.calls.actions.answer(ringing, command_id="answer-1")  # a retry: no error, no second answer
    answered = [w for w in simulator.sim_state()["webhooks"] if w["event_type"] == "call.answered"]
    assert len(answered) == 1


def test_injected_faults(simulator, telnyx_sdk, conference):
    cid = conference["id"]
    simulator.fault("/v2/conferences/*/actions/mute", status=500, times=1)
    expect_error(
        lambda: telnyx_sdk.conferences.actions.mute(cid), "/conferences/{id}/actions/mute", 500, "90000"
    )
    telnyx_sdk.conferences.actions.mute(cid)  # only the next one failed
    simulator.fault("/v2/conferences/*/actions/hold", status=422, code="90018", times=1)
    expect_error(
        lambda: telnyx_sdk.conferences.actions.hold(cid), "/conferences/{id}/actions/hold", 422, "90018"
    )
    simulator.fault("/v2/conferences/*/actions/play", mode="timeout", delay=2)
    with pytest.raises(telnyx.APITimeoutError):
        telnyx_sdk.with_options(timeout=0.5).conferences.actions.play(
            cid, audio_url="https://example.com/a.mp3"
        )
    simulator.fault("/v2/conferences/*/actions/stop", mode="disconnect")
    with pytest.raises(telnyx.APIConnectionError):
        telnyx_sdk.conferences.actions.stop(cid)
    assert len(simulator.requests_to("/actions/mute")) == 2
    assert [r.get("fault") for r in simulator.requests_to("/actions/stop")] == ["disconnect"]


def test_the_demo_scenario_drives_the_state_machine_with_valid_bodies():
    from moderator.simulator.scenario import DemoScenario
    from moderator.simulator.state import ApiError, TelnyxState

    events: list[str] = []
    state = TelnyxState(lambda event_type, payload: events.append(event_type), lambda delay, callback: None)
    for dial_in in ([], ["+15550101"]):
        scenario = DemoScenario(state, seed=7, dial_in_numbers=dial_in)
        for _ in range(500):
            try:
                scenario.step()
            except ApiError:  # refusals (a full queue, a left leg) are part of the demo
                pass
    assert "conference.created" in events and "call.enqueued" in events and "conference.playback.started" in events


def test_the_demo_town_hall_crowd_dials_in_enters_the_pin_when_asked_and_stays_in_its_room():
    from moderator.simulator import bodies
    from moderator.simulator.scenario import DemoScenario, TownHall
    from moderator.simulator.state import TelnyxState

    events: list[tuple[str, dict]] = []
    due: list = []  # the keypad's pace: run by hand, below
    state = TelnyxState(lambda event_type, payload: events.append((event_type, payload)),
                        lambda delay, callback: due.append(callback) if delay < 1 else None)
    scenario = DemoScenario(state, seed=3, town_hall=TownHall("+15550800", "2468", callers=25, per_tick=10))
    scenario.town_hall_step()
    crowd = [c for c in state.calls.values() if c.to_number == "+15550800"]
    assert len(crowd) == 10 and all(c.state != "answered" for c in crowd)  # ringing: the dashboard answers
    for call in crowd[:4]:  # the dashboard answers four of them and asks for the PIN
        state.answer(call.call_control_id, bodies.Answer())
        state.gather_using_speak(call.call_control_id, bodies.GatherUsingSpeak(payload="Your PIN?", voice="female"))
    scenario.town_hall_step()
    scenario.town_hall_step()  # asked once, entered once
    while due:
        due.pop(0)()
    ended = [p for t, p in events if t == "call.gather.ended"]
    assert sorted(p["call_control_id"] for p in ended) == sorted(c.call_control_id for c in crowd[:4])
    assert {p["digits"] for p in ended} == {"2468"}
    assert len([c for c in state.calls.values() if c.to_number == "+15550800"]) == 25  # all of them, no more
    scenario.town_hall_step()
    assert len(state.calls) == 25
    state.create_conference(bodies.CreateConference(call_control_id=crowd[0].call_control_id, name="Town hall"))
    assert not scenario.live(), "the town hall's conference is the dashboard's to run, not the scenario's own"


def by_id_or_name_actions() -> set[str]:
    """The conference actions whose path parameter the spec describes as "by id or name"."""
    from tests.openapi_contract import spec

    actions = set()
    for path, methods in spec()["paths"].items():
        if path.startswith("/conferences/{id}/actions/"):
            (parameter,) = methods["post"]["parameters"]
            if "by id or name" in parameter["description"]:
                actions.add(path.rsplit("/", 1)[-1])
    return actions


def test_conference_actions_documented_by_id_or_name_accept_the_live_conference_name(
    simulator, telnyx_sdk, conference
):
    name, actions = "Weekly sync", telnyx_sdk.conferences.actions
    assert by_id_or_name_actions() == {
        "hold", "unhold", "mute", "unmute", "join", "leave", "play", "stop", "speak", "update",
        "record_start", "record_pause", "record_resume", "record_stop",
    }  # fmt: skip
    raw_call(actions.with_raw_response.mute, name, call_control_ids=[conference["guest"]],
             spec_path="/conferences/{id}/actions/mute")  # fmt: skip
    assert participants(simulator, conference["id"])[conference["guest"]]["muted"] is True
    actions.unmute(name)
    actions.hold(name, call_control_ids=[conference["guest"]])
    actions.unhold(name, call_control_ids=[conference["guest"]])
    actions.update(name, call_control_id=conference["host"], supervisor_role="monitor")
    actions.play(name, audio_url="https://example.com/a.mp3")
    actions.stop(name)
    actions.speak(name, payload="Hello", voice="female")
    actions.record_start(name, format="wav")
    actions.record_pause(name)
    actions.record_resume(name)
    actions.record_stop(name)
    third = simulator.call("+15550003", "+15550100")["call_control_id"]
    actions.join(name, call_control_id=third)
    actions.leave(name, call_control_id=third)
    legs = participants(simulator, conference["id"])
    assert legs[third]["status"] == "left" and legs[conference["host"]]["supervisor_role"] == "monitor"
    (conf,) = simulator.sim_state()["conferences"]
    assert conf["recordings"][0]["format"] == "wav"
    # end, send_dtmf and gather_using_audio take the id only ("Uniquely identifies the conference").
    for refused, action in (
        (lambda: actions.end_conference(name), "end"),
        (lambda: actions.send_dtmf(name, digits="1"), "send_dtmf"),
        (lambda: actions.gather_dtmf_audio(name, call_control_id=conference["guest"]), "gather_using_audio"),
    ):
        expect_error(refused, f"/conferences/{{id}}/actions/{action}", 404, "90058")


def test_a_name_means_the_live_conference_of_that_name_not_an_ended_one(simulator, telnyx_sdk, conference):
    actions = telnyx_sdk.conferences.actions
    actions.end_conference(conference["id"])
    expect_error(lambda: actions.mute("Weekly sync"), "/conferences/{id}/actions/mute", 404, "90058")
    host = simulator.call("+15550009", "+15550100")["call_control_id"]
    again = telnyx_sdk.conferences.create(call_control_id=host, name="Weekly sync").data
    actions.mute("Weekly sync")
    assert participants(simulator, again.id)[host]["muted"] is True


def test_list_participants_filters_by_muted_on_hold_and_whispering(simulator, telnyx_sdk, conference):
    cid, host, guest = conference["id"], conference["host"], conference["guest"]
    supervisor = simulator.call("+15550005", "+15550100")["call_control_id"]
    monitor = simulator.call("+15550006", "+15550100")["call_control_id"]
    actions = telnyx_sdk.conferences.actions
    actions.join(cid, call_control_id=supervisor, supervisor_role="whisper", whisper_call_control_ids=[guest])
    # A whisper supervisor with nobody to whisper to only listens: not whispering.
    actions.join(cid, call_control_id=monitor, supervisor_role="whisper")
    actions.mute(cid, call_control_ids=[guest])
    actions.hold(cid, call_control_ids=[host])

    def listed(**filters) -> set[str]:
        page, _ = raw_call(
            telnyx_sdk.conferences.with_raw_response.list_participants,
            cid,
            filter=filters,
            spec_path="/conferences/{conference_id}/participants",
            http="get",
        )
        return {p.call_control_id for p in page.data}

    assert listed(whispering=True) == {supervisor}
    assert listed(whispering=False) == {host, guest, monitor}
    assert listed(muted=True) == {guest}
    assert listed(on_hold=True, muted=False) == {host}
    assert listed(on_hold=False, whispering=False) == {guest, monitor}


def test_list_filters_that_are_not_of_their_type_get_422_naming_the_parameter(simulator, conference):
    base = f"{simulator.base_url}/conferences"
    headers = {"Authorization": f"Bearer {simulator.api_key}"}
    for path, spec_path, query, code in (
        (f"/{conference['id']}/participants", "/conferences/{conference_id}/participants", "filter[whispering]=yes",
         "10015"),
        (f"/{conference['id']}/participants", "/conferences/{conference_id}/participants", "region=Mars", "10032"),
        (f"/{conference['id']}/participants", "/conferences/{conference_id}/participants", "page[size]=251", "10033"),
        ("", "/conferences", "page[number]=%C2%B2", "10033"),  # "²", a digit to str.isdigit
        ("", "/conferences", "page[number]=" + "9" * 5000, "10033"),
        ("", "/conferences", "filter[status]=gone", "10032"),
    ):  # fmt: skip
        response = httpx.get(f"{base}{path}?{query}", headers=headers)
        assert response.status_code == 422, (query, response.text)
        assert_matches_spec(spec_path, "get", 422, response.json())
        (error,) = response.json()["errors"]
        assert error["code"] == code and error["source"] == {"parameter": query.split("=")[0]}, error


def test_a_participant_is_retrieved_and_updated_by_label_as_well_as_by_id(simulator, telnyx_sdk, conference):
    cid, guest = conference["id"], conference["guest"]
    by_id, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.retrieve_participant,
        guest,
        id=cid,
        spec_path="/conferences/{id}/participants/{participant_id}",
        http="get",
    )
    label = by_id.data.label
    assert label == "+15550002"  # the guest's caller
    by_label, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.retrieve_participant,
        label,
        id=cid,
        spec_path="/conferences/{id}/participants/{participant_id}",
        http="get",
    )
    assert by_label.data.id == by_id.data.id and by_label.data.call_control_id == guest
    updated, _ = raw_call(
        telnyx_sdk.conferences.with_raw_response.update_participant,
        label,
        id=cid,
        soft_end_conference_on_exit=True,
        spec_path="/conferences/{id}/participants/{participant_id}",
        http="patch",
    )
    assert updated.data.call_control_id == guest and updated.data.soft_end_conference_on_exit is True
    telnyx_sdk.conferences.update_participant(label, id=cid, soft_end_conference_on_exit=False)
    # The same caller again on another leg: the label now means the leg in the conference.
    telnyx_sdk.conferences.actions.leave(cid, call_control_id=guest)
    again = simulator.call("+15550002", "+15550100")["call_control_id"]
    telnyx_sdk.conferences.actions.join(cid, call_control_id=again)
    assert telnyx_sdk.conferences.retrieve_participant(label, id=cid).data.call_control_id == again
    expect_error(
        lambda: telnyx_sdk.conferences.retrieve_participant("+15559999", id=cid),
        "/conferences/{id}/participants/{participant_id}",
        404,
        "10005",
        "get",
    )


def test_join_leave_and_update_refuse_an_unknown_conference_with_422_as_their_spec_lists_no_404(
    simulator, telnyx_sdk
):
    leg = simulator.call()["call_control_id"]
    actions = telnyx_sdk.conferences.actions
    for name, action in (
        ("join", lambda: actions.join("no-such-conference", call_control_id=leg)),
        ("leave", lambda: actions.leave("no-such-conference", call_control_id=leg)),
        ("update", lambda: actions.update("no-such-conference", call_control_id=leg, supervisor_role="none")),
    ):
        error = expect_error(
            action,
            f"/conferences/{{id}}/actions/{name}",
            422,
            "90058",
        )
        assert error["title"] == "Invalid conference_id"
