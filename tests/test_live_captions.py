"""Live captions, from call.transcription webhooks to the conference's page, its transcript and the board:
interim results replace the line being said, finals are kept once each, whatever order Telnyx delivers them in;
only readers of captions see what was said."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from moderator.models import Caption, Conference, ModeratorAction, OutboxCommand, Participant, Room
from tests.telnyx_events import at, event, leg

pytestmark = pytest.mark.django_db

CONF = {"conference_id": "conf-cc", "connection_id": "conn-1"}


def said(name: str, text: str, seconds: float, *, final: bool, event_id: str | None = None,
         confidence: float = 0.9) -> dict:
    return event("call.transcription", {**leg(name), "transcription_data": {
        "transcript": text, "is_final": final, "confidence": confidence}}, at(seconds), event_id=event_id)


@pytest.fixture
def reader(moderator_user):
    moderator_user.user_permissions.add(Permission.objects.get(codename="view_captions"))
    return moderator_user


@pytest.fixture
def ada_and_bob(deliver):
    room = Room.objects.create(name="Town hall", caption_keywords="refund, chargeback\nlegal action")
    deliver(
        event("conference.created", {**leg("host"), **CONF}, at(1), occurred_in_payload=True),
        event("call.initiated", {**leg("ada"), "from": "+15550901", "to": "+15550100", "caller_id_name": "Ada"}, at(1)),
        event("call.initiated", {**leg("bob"), "from": "+15550902", "to": "+15550100"}, at(1)),
        event("conference.participant.joined", {**leg("ada"), **CONF}, at(2)),
        event("conference.participant.joined", {**leg("bob"), **CONF}, at(2)),
    )
    Conference.objects.filter(telnyx_id="conf-cc").update(room=room)
    return room


@pytest.fixture
def observer(observer_user):
    """A second browser, next to `moderator_client` (the observer_client fixture would be the same client)."""
    client = Client()
    client.force_login(observer_user)
    return client


def page(client) -> str:
    return client.get("/conferences/conf-cc/").content.decode()


def leg_of(client, name: str) -> dict:
    return next(p for p in client.get("/api/conferences/conf-cc").json()["participants"]
                if p["call_control_id"] == f"v3:{name}")


def test_interim_results_replace_the_line_and_the_final_is_kept_once(ada_and_bob, deliver, reader, moderator_client):
    deliver(said("ada", "I would", 10.0, final=False))
    deliver(said("ada", "I would like a", 10.5, final=False))
    text = page(moderator_client)
    assert text.count('class="caption live"') == 1 and "I would like a" in text
    assert leg_of(moderator_client, "ada")["captioning"] is True

    final = said("ada", "I would like a refund.", 11.0, final=True, event_id="ev-final-1")
    deliver(final, final)  # delivered twice
    deliver(said("ada", "I would like", 10.8, final=False))  # an interim that arrives after its final
    (line,) = Caption.objects.all()
    assert (line.text, line.call_control_id, line.keywords, line.confidence) == ("I would like a refund.", "v3:ada",
                                                                                  "refund", 0.9)
    text = page(moderator_client)
    assert 'class="caption live"' not in text and text.count("I would like a refund.") == 1
    assert '<span class="who">Ada</span> <span class="said">I would like a refund.</span>' in text
    assert leg_of(moderator_client, "ada")["captioning"] is False
    assert leg_of(moderator_client, "ada")["keyword_alert"] is True


def test_keywords_match_whole_words_and_phrases(ada_and_bob, deliver, reader, moderator_client):
    deliver(said("bob", "Refunded? No. We may take LEGAL action!", 12.0, final=True),
            said("ada", "a chargeback", 13.0, final=True))
    assert dict(Caption.objects.values_list("call_control_id", "keywords")) == {
        "v3:bob": "legal action", "v3:ada": "chargeback"}
    board = moderator_client.get("/").content.decode()
    assert board.count('class="alert-item"') == 2 and "LEGAL action!" in board


def test_a_line_in_progress_goes_when_the_caller_leaves_and_hanging_up_stops_the_captions(
        ada_and_bob, deliver, reader, moderator_client):
    deliver(said("bob", "so what I", 20.0, final=False))
    deliver(event("conference.participant.left", {**leg("bob"), **CONF}, at(21)))
    assert 'class="caption live"' not in page(moderator_client)


def test_readers_of_captions_only(ada_and_bob, deliver, moderator_client, observer):
    deliver(said("ada", "Secret plans.", 11.0, final=True))
    for client in (moderator_client, observer):  # the moderator may act, but not read captions
        text = page(client)
        assert "Secret plans." not in text and 'id="captions"' not in text
        assert client.get("/conferences/conf-cc/transcript.txt").status_code == 403
        assert client.get("/transcripts/?q=secret").status_code == 403
        assert "Keyword alerts" not in client.get("/").content.decode()


def test_transcript_exports_and_search(ada_and_bob, deliver, reader, moderator_client):
    deliver(said("ada", "Hello everyone.", 65.0, final=True),
            said("bob", "Is the <b>refund</b> policy & the rest --> changing?", 70.0, final=True))
    response = moderator_client.get("/conferences/conf-cc/transcript.txt")
    assert response["Content-Type"].startswith("text/plain") and "attachment" in response["Content-Disposition"]
    text = response.content.decode()
    assert "Times from the conference's start" in text
    assert "[00:01:04] Ada: Hello everyone." in text  # the conference was created at 1 s
    assert "[00:01:09] +15550902: Is the <b>refund</b> policy & the rest --> changing?" in text

    vtt = moderator_client.get("/conferences/conf-cc/transcript.vtt").content.decode()
    assert vtt.startswith("WEBVTT\n")
    cues = vtt.split("\n\n")
    assert "00:01:03.000 --> 00:01:04.000\n<v Ada>Hello everyone." in vtt
    assert "<v +15550902>Is the &lt;b&gt;refund&lt;/b&gt; policy &amp; the rest --&gt; changing?" in vtt
    assert len([c for c in cues if "-->" in c]) == 2

    results = moderator_client.get("/transcripts/", {"q": "REFUND policy"}).content.decode()
    assert "1 line says “REFUND policy”" in results and "<mark>refund</mark>" in results and "<mark>policy</mark>" in results
    assert 'href="/conferences/conf-cc/"' in results
    assert "Nothing said" in moderator_client.get("/transcripts/", {"q": "nobody said this"}).content.decode()


def test_webvtt_is_timed_from_the_recording_when_there_is_one(ada_and_bob, deliver, reader, moderator_client):
    deliver(
        event("conference.recording.saved", {**CONF, "recording_id": "rec-1", "format": "mp3", "channels": "single",
                                             "recording_started_at": at(30), "recording_ended_at": at(90)}),
        said("ada", "Before the recording.", 20.0, final=True),
        said("ada", "Recorded words.", 40.0, final=True),
    )
    vtt = moderator_client.get("/conferences/conf-cc/transcript.vtt").content.decode()
    assert "Before the recording." not in vtt and "times from the recording's start" in vtt
    assert "00:00:09.000 --> 00:00:10.000\n<v Ada>Recorded words." in vtt


def test_turning_captions_on_and_off_plans_each_legs_command_and_joiners_are_captioned(
        ada_and_bob, deliver, reader, moderator_client):
    post = lambda on: moderator_client.post("/api/conferences/conf-cc/captions", {"on": on},  # noqa: E731
                                            content_type="application/json")
    response = post(True)
    assert response.status_code == 200
    assert response.json()["data"] == {"captions": True, "legs": ["v3:ada", "v3:bob"]}
    assert sorted(OutboxCommand.objects.filter(kind="transcribe").values_list("call_control_id", flat=True)) == [
        "v3:ada", "v3:bob"]
    assert 'data-captions="true"' in page(moderator_client) and "captions on" in page(moderator_client)
    assert "mod turned live captions on" in page(moderator_client)
    assert '<span class="badge cc">captions on</span>' in moderator_client.get("/").content.decode()  # its card
    deliver(event("conference.participant.joined", {**leg("cy"), **CONF}, at(30)))
    deliver(event("conference.participant.joined", {**leg("cy"), **CONF}, at(30)))  # redelivered: one command
    assert OutboxCommand.objects.filter(kind="transcribe", call_control_id="v3:cy").count() == 1
    (audit,) = ModeratorAction.objects.filter(action="captions_on")
    assert audit.user.username == "mod" and audit.conference.telnyx_id == "conf-cc"

    assert post(False).json()["data"] == {"captions": False, "legs": []}  # none was accepted yet: nothing to stop
    assert 'data-captions="false"' in page(moderator_client)


def test_captions_cannot_be_turned_on_where_they_may_not(ada_and_bob, deliver, reader, moderator_client, observer):
    def post(client, body, conference="conf-cc"):
        return client.post(f"/api/conferences/{conference}/captions", body, content_type="application/json")

    assert post(observer, {"on": True}).status_code == 403
    assert post(moderator_client, {"on": "yes please"}).status_code == 400
    assert post(moderator_client, {}).status_code == 400
    assert post(moderator_client, {"on": True}, "nope").status_code == 404
    Room.objects.filter(pk=ada_and_bob.pk).update(transcription_forbidden=True)
    response = post(moderator_client, {"on": True})
    assert response.status_code == 409 and response.json()["error"]["detail"] == "the room Town hall forbids transcription"
    assert "Captions on" not in page(moderator_client)
    Room.objects.filter(pk=ada_and_bob.pk).update(transcription_forbidden=False)
    deliver(event("conference.ended", {**CONF, "reason": "host_left"}, at(99)))
    assert post(moderator_client, {"on": True}).status_code == 409
    assert not OutboxCommand.objects.filter(kind="transcribe").exists()
    assert not Conference.objects.get(telnyx_id="conf-cc").captions_on


def test_the_admin_deletes_a_conferences_transcript_in_one_audited_action(ada_and_bob, deliver, admin_client,
                                                                           django_user_model):
    deliver(said("ada", "Delete me.", 11.0, final=True), said("bob", "And me.", 12.0, final=True))
    assert "Delete me." in admin_client.get("/admin/moderator/caption/").content.decode()
    conference = Conference.objects.get(telnyx_id="conf-cc")
    response = admin_client.post("/admin/moderator/conference/", {
        "action": "delete_transcript", "_selected_action": [conference.pk]}, follow=True)
    assert "Deleted 2 transcript lines of 1 conference." in response.content.decode()
    assert not Caption.objects.exists()
    (audit,) = ModeratorAction.objects.filter(action="delete_transcript")
    assert (audit.user.username, audit.conference, audit.parameters) == ("admin", conference, {"lines": 2})

    # Staff who may not read captions see neither the lines nor the action.
    staff = django_user_model.objects.create_user("staff", password="pw-staff-123456", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_conference", "delete_caption"]))
    other = Client()
    other.force_login(staff)
    assert other.get("/admin/moderator/caption/").status_code == 403
    assert "delete_transcript" not in other.get("/admin/moderator/conference/").content.decode()


def test_stopping_a_legs_transcription_ends_the_line_it_was_saying(ada_and_bob, deliver, reader, moderator_client):
    from moderator.state import rules

    Participant.objects.filter(call_control_id="v3:ada").update(transcribing=True)
    deliver(said("ada", "so what I was", 20.0, final=False))
    assert 'class="caption live"' in page(moderator_client)
    conference = Conference.objects.get(telnyx_id="conf-cc")
    changes = rules.apply_accepted(conference, rules.transcription_stopped, {"call_control_ids": ["v3:ada"]})
    assert changes.caption_lines == {("conf-cc", "v3:ada")}
    assert 'class="caption live"' not in page(moderator_client)  # no final will come for it
    assert leg_of(moderator_client, "ada")["transcribing"] is False
    deliver(said("ada", "so what I was saying", 20.5, final=False))  # one still on its way: older, kept away
    assert 'class="caption live"' not in page(moderator_client)


def test_bad_ids_and_queries_are_clear_answers(ada_and_bob, reader, moderator_client):
    for path in ("/conferences/a%00b/transcript.txt", "/conferences/a%00b/transcript.vtt", "/conferences/a%00b/",
                 "/conferences/nope/transcript.txt"):
        assert moderator_client.get(path).status_code == 404, path
    response = moderator_client.get("/transcripts/", {"q": "\x00refund\x00"})
    assert response.status_code == 200 and "Nothing said “refund”" in response.content.decode()


def test_the_caller_who_starts_a_captioned_conference_is_sent_one_start(ada_and_bob, deliver):
    """Routing plans a start for the conference's starter, and its joined webhook (applied with captions on) plans
    one too: sent at once by the outbox, both read the leg as not transcribed yet. Only the join's is sent."""
    from moderator.control import captions

    Conference.objects.filter(telnyx_id="conf-cc").update(captions_on=True)
    deliver(event("conference.participant.joined", {**leg("cy"), **CONF}, at(30)))  # plans the join's row
    captions.plan_started(Conference.objects.get(telnyx_id="conf-cc"), "v3:cy")  # and routing, the starter's row
    assert OutboxCommand.objects.filter(kind="transcribe", call_control_id="v3:cy").count() == 2
    starter = OutboxCommand.objects.get(
        command_id=captions._step(OutboxCommand.Kind.TRANSCRIBE, "v3:cy", "conf-cc", "start").command_id)
    outcome = captions.start(starter)  # no Telnyx call: it would fail here, with no API to answer
    assert (outcome.status, outcome.error) == ("skipped", "the caller's joined webhook planned the start")
