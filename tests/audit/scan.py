"""Search every column of every table for a string: proof that a value is gone from the whole database."""

from __future__ import annotations

from django.db import connection


def columns_containing(needle: str) -> list[str]:
    """``table.column`` for each column holding ``needle`` (any letter case) in at least one row.

    Every column is read as text, whatever its type (text, JSON, addresses, numbers), so nothing is skipped.
    """
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            quoted_table = connection.ops.quote_name(table)
            for column in connection.introspection.get_table_description(cursor, table):
                quoted_column = connection.ops.quote_name(column.name)
                cursor.execute(
                    f"SELECT 1 FROM {quoted_table} WHERE LOWER(CAST({quoted_column} AS TEXT)) LIKE %s LIMIT 1",  # noqa: S608
                    [f"%{needle.lower()}%"],
                )
                if cursor.fetchone() is not None:
                    found.append(f"{table}.{column.name}")
    return found
