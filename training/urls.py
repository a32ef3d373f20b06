from django.urls import path

from . import views
from .views import models as model_pages
from .views import run_pages

app_name = "training"
urlpatterns = [
    # ------------------------------------------------------------ datasets
    path("", views.dataset_list, name="index"),
    path("datasets/", views.dataset_list, name="dataset_list"),
    path("datasets/new/", views.dataset_new, name="dataset_new"),
    path("datasets/new/<slug:token>/", views.dataset_columns, name="dataset_columns"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/table.csv", views.dataset_table, name="dataset_table"),
    path("datasets/<int:pk>/source", views.dataset_source, name="dataset_source"),
    # ------------------------------------------------------------ runs (start one)
    path("runs/new/", views.run_new, name="run_new"),
    # ------------------------------------------------------------ run pages, history, comparison
    path("runs/<uuid:job_id>/", run_pages.run_detail, name="run_detail"),
    path("runs/<uuid:job_id>/live/", run_pages.run_live, name="run_live"),
    path("runs/<uuid:job_id>/register/", run_pages.run_register, name="run_register"),
    path("datasets/<int:pk>/runs/", run_pages.dataset_runs, name="dataset_runs"),
    path("compare/", run_pages.compare, name="compare"),
    # ------------------------------------------------------------ model registry
    path("models/", model_pages.model_list, name="model_list"),
    path("models/<int:pk>/", model_pages.model_detail, name="model_detail"),
    path("models/<int:pk>/bundle.zip", model_pages.model_bundle, name="model_bundle"),
]
