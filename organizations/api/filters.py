import django_filters

from erp.api.filters import BooleanFilter, FilterSet, IntegerFilter
from organizations.models import Department, Membership, Organization


class OrganizationFilterSet(FilterSet):
    parent = django_filters.CharFilter(
        field_name="parent__slug", help_text="Subsidiaries of the organization with this slug."
    )

    class Meta:
        model = Organization
        fields = ["is_active", "parent", "code"]


class DepartmentFilterSet(FilterSet):
    parent = IntegerFilter(field_name="parent_id")
    is_root = BooleanFilter(field_name="parent", lookup_expr="isnull")
    manager = IntegerFilter(field_name="manager_id")
    max_depth = IntegerFilter(field_name="depth", lookup_expr="lte")

    class Meta:
        model = Department
        fields = ["code", "depth", "parent", "is_root", "manager", "max_depth"]


class MembershipFilterSet(FilterSet):
    department = IntegerFilter(field_name="department_id")
    user = IntegerFilter(field_name="user_id")
    joined_after = django_filters.DateFilter(field_name="joined_on", lookup_expr="gte")
    joined_before = django_filters.DateFilter(field_name="joined_on", lookup_expr="lte")

    class Meta:
        model = Membership
        fields = ["department", "user", "is_active", "employee_number", "joined_after", "joined_before"]
