"""Recording links come from webhooks: only http(s) URLs become links, on the live view, in the read API and
in the admin; anything else (`javascript:`, `data:`, …) is never a link a moderator could click."""

from __future__ import annotations

import re

import pytest

from moderator.models import Recording
from tests.telnyx_events import conference_life

pytestmark = pytest.mark.django_db

HOSTILE = [
    "javascript:alert(document.domain)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "\x01javascript:alert(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "vbscript:msgbox(1)",
    "//evil.example/x.mp3",
    "https:evil.example",
    "/relative/x.mp3",
]
GOOD = "https://recordings.example.com/rec.mp3?sig=a&b=c"


def life_with_recording(deliver, urls: dict, public: dict | None = None) -> None:
    """An ended conference whose conference.recording.saved webhook carries `urls`."""
    events = conference_life("conf-1", ["alice", "bob"])
    saved = next(e for e in events if e["data"]["event_type"] == "conference.recording.saved")
    saved["data"]["payload"]["recording_urls"] = urls
    saved["data"]["payload"]["public_recording_urls"] = public or {}
    deliver(*events)


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]*)"', html)


@pytest.mark.parametrize("url", HOSTILE)
def test_a_recording_url_that_is_not_http_is_no_link_on_the_ended_conference_page(deliver, observer_client, url):
    life_with_recording(deliver, {"mp3": url, "wav": GOOD}, public={"mp3": url})
    page = observer_client.get("/conferences/conf-1/").content.decode()
    assert "Recordings" in page
    assert "javascript:" not in page.lower() and "data:text" not in page and "vbscript" not in page
    assert "download wav" in page and "download mp3" not in page
    assert GOOD.replace("&", "&amp;") in hrefs(page)


def test_the_read_api_lists_only_http_recording_urls(deliver, observer_client):
    life_with_recording(deliver, {"mp3": "javascript:alert(document.domain)", "wav": GOOD})
    recording = observer_client.get("/api/conferences/conf-1").json()["recordings"][0]
    assert recording["recording_urls"] == {"wav": GOOD}
    assert recording["public_recording_urls"] == {}


def test_what_telnyx_sent_is_still_stored_as_evidence(deliver):
    life_with_recording(deliver, {"mp3": "javascript:alert(document.domain)"})
    assert Recording.objects.get().download_urls == {"mp3": "javascript:alert(document.domain)"}


@pytest.mark.parametrize("url", HOSTILE)
def test_the_admin_shows_a_recording_url_that_is_not_http_as_text_not_a_link(deliver, admin_client, url):
    life_with_recording(deliver, {"mp3": url, "wav": GOOD})
    recording = Recording.objects.get()
    pages = [
        admin_client.get(f"/admin/moderator/conference/{recording.conference_id}/change/"),
        admin_client.get("/admin/moderator/recording/"),
        admin_client.get(f"/admin/moderator/recording/{recording.pk}/change/"),
    ]
    for response in pages:
        assert response.status_code == 200
        page = response.content.decode()
        links = hrefs(page)
        assert GOOD.replace("&", "&amp;") in links
        assert not [link for link in links if re.match(r"\s*(java|vb)\s*script|data:|//evil", link, re.I)]
        assert not [link for link in links if "\t" in link or "\x01" in link]
    assert "(not a link)" in pages[0].content.decode()


def test_an_http_recording_url_is_a_link_everywhere(deliver, observer_client, admin_client):
    life_with_recording(deliver, {"mp3": "http://recordings.example.com/a.mp3"})
    assert 'href="http://recordings.example.com/a.mp3"' in observer_client.get("/conferences/conf-1/").content.decode()
    recording = Recording.objects.get()
    admin_page = admin_client.get(f"/admin/moderator/conference/{recording.conference_id}/change/").content.decode()
    assert 'href="http://recordings.example.com/a.mp3"' in admin_page
