from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from erp.api.filters import BooleanFilter, FilterSet, IntegerFilter
from rbac.models import Role, RoleAssignment


class RoleFilterSet(FilterSet):
    parent = IntegerFilter(field_name="parent_id")

    class Meta:
        model = Role
        fields = ["code", "is_system", "parent"]


class RoleAssignmentFilterSet(FilterSet):
    user = IntegerFilter(field_name="user_id")
    role = IntegerFilter(field_name="role_id")
    department = IntegerFilter(field_name="department_id")
    in_force = BooleanFilter(
        method="filter_in_force", help_text="Assignments that grant their role now (true) or do not (false)."
    )

    class Meta:
        model = RoleAssignment
        fields = ["user", "role", "department", "is_active", "in_force"]

    def filter_in_force(self, queryset: QuerySet[RoleAssignment], name: str, value: Any) -> QuerySet[RoleAssignment]:
        now = timezone.now()
        in_force = (
            Q(is_active=True)
            & (Q(valid_from__isnull=True) | Q(valid_from__lte=now))
            & (Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        )
        return queryset.filter(in_force) if value else queryset.exclude(in_force)
