from django.urls import path

from . import views

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
]
