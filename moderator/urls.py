from django.contrib import admin
from django.urls import include, path

from moderator import views
from moderator.api import read as api

urlpatterns = [
    path("", views.board, name="board"),
    # Telnyx ids are matched as paths (a "/" in one arrives as %2F, decoded): no id can break a link.
    path("conferences/<path:telnyx_id>/", views.conference_page, name="conference"),
    path("profile/", views.profile, name="profile"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("api/schema", api.schema, name="api-schema"),
    path("api/conferences", api.conference_collection, name="api-conferences"),
    path("api/queues", api.queue_list, name="api-queue-list"),
    path("", include("moderator.api.actions")),  # before the detail: its paths end in /actions/…, /resync
    path("api/conferences/<path:telnyx_id>", api.conference_detail, name="api-conference-detail"),
]

# Under /api/ the error pages Django itself answers with (a body it cannot parse, no such path) are JSON too.
handler400 = api.bad_request
handler403 = api.permission_denied
handler404 = api.page_not_found
handler500 = api.server_error
