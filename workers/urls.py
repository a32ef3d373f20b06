from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("jobs/", views.job_list, name="job_list"),
    path("jobs/<uuid:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<uuid:job_id>/progress/", views.job_progress, name="job_progress"),
    path("jobs/<uuid:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("jobs/<uuid:job_id>/rerun/", views.job_rerun, name="job_rerun"),
    path("jobs/<uuid:job_id>/files/<str:name>", views.job_download, name="job_download"),
]
