"""The API's URL scheme: account-level routes, and org-scoped resources under ``organizations/{slug}/``.

Org-scoped resources are registered on ``tenant_router`` only; the cross-organization tests walk that router.
"""

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from accounts.api import views as account_views
from audit.api import AuditChangeViewSet, AuditEventViewSet
from audit.api_erasure import MyDataExportView, UserEraseView
from erp.api.views import ApiRootView
from organizations.api import invitations as invitation_views
from organizations.api.views import DepartmentViewSet, MembershipViewSet, OrganizationViewSet
from rbac.api.views import ExplainViewSet, PermissionViewSet, RoleAssignmentViewSet, RoleViewSet
from tasks.api.views import CommentViewSet, ProjectViewSet, TaskViewSet, TimeEntryViewSet

account_router = SimpleRouter()
account_router.register("organizations", OrganizationViewSet, basename="organization")

tenant_router = SimpleRouter()
tenant_router.register("departments", DepartmentViewSet, basename="department")
tenant_router.register("members", MembershipViewSet, basename="member")
tenant_router.register("invitations", invitation_views.InvitationViewSet, basename="invitation")
tenant_router.register("roles", RoleViewSet, basename="role")
tenant_router.register("role-assignments", RoleAssignmentViewSet, basename="role-assignment")
tenant_router.register("permissions", PermissionViewSet, basename="permission")
tenant_router.register("explain", ExplainViewSet, basename="explain")
tenant_router.register("audit/changes", AuditChangeViewSet, basename="audit-change")
tenant_router.register("audit/events", AuditEventViewSet, basename="audit-event")
tenant_router.register("projects", ProjectViewSet, basename="project")
tenant_router.register("tasks", TaskViewSet, basename="task")
tenant_router.register("comments", CommentViewSet, basename="comment")
tenant_router.register("time-entries", TimeEntryViewSet, basename="time-entry")

app_name = "api"
urlpatterns = [
    path("", ApiRootView.as_view(), name="root"),
    path("auth/csrf/", account_views.CsrfView.as_view(), name="auth-csrf"),
    path("auth/login/", account_views.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", account_views.LogoutView.as_view(), name="auth-logout"),
    path("me/", account_views.MeView.as_view(), name="me"),
    path("me/password/", account_views.PasswordChangeView.as_view(), name="me-password"),
    path("me/permissions/", account_views.MyPermissionsView.as_view(), name="me-permissions"),
    path("me/sessions/", account_views.MySessionsView.as_view(), name="me-sessions"),
    path(
        "me/sessions/revoke-others/",
        account_views.MySessionsRevokeOthersView.as_view(),
        name="me-sessions-revoke-others",
    ),
    path("me/sessions/<int:pk>/", account_views.MySessionView.as_view(), name="me-session"),
    path("me/export/", MyDataExportView.as_view(), name="me-export"),
    path("me/invitations/", invitation_views.MyInvitationsView.as_view(), name="me-invitations"),
    path(
        "me/invitations/<int:pk>/accept/",
        invitation_views.MyInvitationAcceptView.as_view(),
        name="me-invitation-accept",
    ),
    path(
        "me/invitations/<int:pk>/decline/",
        invitation_views.MyInvitationDeclineView.as_view(),
        name="me-invitation-decline",
    ),
    path("invitations/accept/", invitation_views.InvitationTokenAcceptView.as_view(), name="invitation-accept"),
    path("users/<int:pk>/erase/", UserEraseView.as_view(), name="user-erase"),
    path("", include(account_router.urls)),
    path("organizations/<slug:organization_slug>/", include(tenant_router.urls)),
]
