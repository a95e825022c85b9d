import django_filters

from organizations.models import Department, Membership, Organization


class OrganizationFilterSet(django_filters.FilterSet):
    parent = django_filters.CharFilter(
        field_name="parent__slug", help_text="Subsidiaries of the organization with this slug."
    )

    class Meta:
        model = Organization
        fields = ["is_active", "parent", "code"]


class DepartmentFilterSet(django_filters.FilterSet):
    parent = django_filters.NumberFilter(field_name="parent_id")
    is_root = django_filters.BooleanFilter(field_name="parent", lookup_expr="isnull")
    manager = django_filters.NumberFilter(field_name="manager_id")
    max_depth = django_filters.NumberFilter(field_name="depth", lookup_expr="lte")

    class Meta:
        model = Department
        fields = ["code", "depth", "parent", "is_root", "manager", "max_depth"]


class MembershipFilterSet(django_filters.FilterSet):
    department = django_filters.NumberFilter(field_name="department_id")
    user = django_filters.NumberFilter(field_name="user_id")
    joined_after = django_filters.DateFilter(field_name="joined_on", lookup_expr="gte")
    joined_before = django_filters.DateFilter(field_name="joined_on", lookup_expr="lte")

    class Meta:
        model = Membership
        fields = ["department", "user", "is_active", "is_admin", "employee_number", "joined_after", "joined_before"]
