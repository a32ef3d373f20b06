from django.urls import path

from . import views

app_name = "analysis"
urlpatterns = [
    path("new/", views.new_analysis, name="new"),
]
