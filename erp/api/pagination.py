"""Cursor pagination with a hard page-size cap: no OFFSET scans and no COUNT(*) on large tables."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import exceptions, pagination
from rest_framework.request import Request
from rest_framework.settings import api_settings


class CursorPagination(pagination.CursorPagination):
    """Pages of ``page_size`` rows (1 to ``API_MAX_PAGE_SIZE``), ordered by a stable key; a bad value is a 400."""

    ordering = "-pk"
    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:  # type: ignore[override]
        return int(settings.API_MAX_PAGE_SIZE)

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(self.page_size or api_settings.PAGE_SIZE or 50)
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise exceptions.ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}."]}
            )
        return int(raw)

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as error:
            raise exceptions.ValidationError({self.cursor_query_param: ["This cursor is not valid."]}) from error
