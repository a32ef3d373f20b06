"""The predict page's route, included in training/urls.py (namespace "training")."""

from django.urls import path

from . import views

urlpatterns = [
    path("predict/new/", views.predict_new, name="predict_new"),
]
