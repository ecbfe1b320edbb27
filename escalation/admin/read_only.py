"""Records the admin shows but never lets anyone add, edit or delete: the history of who was woken and when,
the webhooks and alerts received. Their actions (retry, acknowledge, resolve) go through services."""

from django.db.models import Model
from django.http import HttpRequest


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
