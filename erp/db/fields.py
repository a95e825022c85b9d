"""Model fields shared by the contexts."""

from __future__ import annotations

from typing import Any

from django.db import models


class PathField(models.CharField):
    """A materialized path (``HQ/SALES/``), compared byte by byte.

    On PostgreSQL the column uses the "C" collation, so that one ordinary B-tree index serves both the prefix match
    of a subtree (``LIKE 'HQ/%'``) and the ordering of a page by path; SQLite compares bytes already.
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        parameters = super().db_parameters(connection)
        if connection.vendor == "postgresql":
            parameters["collation"] = "C"
        return parameters
