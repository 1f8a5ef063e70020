import pytest
from django.db import DatabaseError, transaction

from margin.models import AuditEntry
from margin.services.audit import audit_record

pytestmark = pytest.mark.django_db


def test_audit_entries_can_be_added_but_never_changed_or_deleted():
    entry = audit_record(action="note", subject="case:1", after={"text": "called the trader"})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).reason == ""
