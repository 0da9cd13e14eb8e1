from django.apps import AppConfig


class ModeratorConfig(AppConfig):
    name = "moderator"
    verbose_name = "Conference moderator"
    default_auto_field = "django.db.models.BigAutoField"
