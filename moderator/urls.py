from django.contrib import admin
from django.urls import include, path

from moderator import views

urlpatterns = [
    path("", views.board, name="board"),
    # Telnyx ids are matched as paths (a "/" in one arrives as %2F, decoded): no id can break a link.
    path("conferences/<path:telnyx_id>/transcript.txt", views.transcript_text, name="transcript-text"),
    path("conferences/<path:telnyx_id>/transcript.vtt", views.transcript_webvtt, name="transcript-webvtt"),
    path("conferences/<path:telnyx_id>/", views.conference_page, name="conference"),
    path("transcripts/", views.transcript_search, name="transcripts"),
    path("profile/", views.profile, name="profile"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", views.healthz, name="healthz"),
    # Asked for by browsers on a page that names no icon (a JSON answer, an error page).
    path("favicon.ico", views.favicon),
    path("", include("moderator.api.urls")),
]

# Under /api/ the error pages Django itself answers with (a body it cannot parse, no such path) are JSON too.
handler400 = "moderator.api.errors.bad_request"
handler403 = "moderator.api.errors.permission_denied"
handler404 = "moderator.api.errors.page_not_found"
handler500 = "moderator.api.errors.server_error"
