"""The database itself refuses to change or remove security events.

UPDATE is always refused; DELETE only inside a transaction that holds a ``PurgeWindow`` row (the retention command).
"""

from django.db import migrations

POSTGRESQL = """
CREATE FUNCTION audit_securityevent_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_purgewindow) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'security events are append-only: % refused', TG_OP USING ERRCODE = 'integrity_constraint_violation';
END;
$$;
CREATE TRIGGER audit_securityevent_append_only BEFORE UPDATE OR DELETE ON audit_securityevent
    FOR EACH ROW EXECUTE FUNCTION audit_securityevent_append_only();
"""
POSTGRESQL_REVERSE = """
DROP TRIGGER IF EXISTS audit_securityevent_append_only ON audit_securityevent;
DROP FUNCTION IF EXISTS audit_securityevent_append_only();
"""
SQLITE = [
    """CREATE TRIGGER audit_securityevent_no_update BEFORE UPDATE ON audit_securityevent
       BEGIN SELECT RAISE(ABORT, 'security events are append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_securityevent_no_delete BEFORE DELETE ON audit_securityevent
       WHEN NOT EXISTS (SELECT 1 FROM audit_purgewindow)
       BEGIN SELECT RAISE(ABORT, 'security events are append-only: DELETE refused'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_securityevent_no_update",
    "DROP TRIGGER IF EXISTS audit_securityevent_no_delete",
]


def create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = [POSTGRESQL] if vendor == "postgresql" else SQLITE if vendor == "sqlite" else []
    for statement in statements:
        schema_editor.execute(statement, params=None)


def drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    statements = [POSTGRESQL_REVERSE] if vendor == "postgresql" else SQLITE_REVERSE if vendor == "sqlite" else []
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
