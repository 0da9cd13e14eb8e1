"""Moderator actions API (filled by the actions work)."""

urlpatterns: list = []
