"""The auditor's pages: ``/audit/`` and, per organization, ``/audit/<slug>/…``."""

from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.index, name="index"),
    # Before the organizations' pages: an organization's slug never reaches these two.
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("<slug:slug>/", views.changes, name="changes"),
    path("<slug:slug>/changes.csv", views.export, name="export"),
    path("<slug:slug>/events/", views.events, name="events"),
    path("<slug:slug>/objects/<str:label>/<str:object_id>/", views.timeline, name="timeline"),
    path("<slug:slug>/objects/<str:label>/<str:object_id>/diff/", views.diff, name="diff"),
    path("<slug:slug>/objects/<str:label>/<str:object_id>/as-of/", views.as_of, name="as_of"),
]
