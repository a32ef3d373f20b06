from django.urls import path

from . import views

app_name = "design"
urlpatterns = [
    path("", views.index, name="index"),
    path("targets/new/", views.target_new, name="target_new"),
    path("targets/<int:pk>/", views.target_detail, name="target_detail"),
    path("targets/<int:pk>/structure.pdb", views.target_structure, name="target_structure"),
    path("campaigns/new/", views.campaign_new, name="campaign_new"),
    path("campaigns/<int:pk>/", views.campaign_detail, name="campaign_detail"),
    path("campaigns/<int:pk>/runs/new/", views.run_new, name="run_new"),
    path("runs/<uuid:job_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:job_id>/history/", views.run_history, name="run_history"),
    path("compare/", views.compare, name="compare"),
    path("properties/new/", views.properties_new, name="properties_new"),
    path("docking/new/", views.docking_new, name="docking_new"),
    path("shortlist/", views.shortlist, name="shortlist"),
    path("shortlist/add/", views.shortlist_add, name="shortlist_add"),
    path("shortlist/<int:pk>/remove/", views.shortlist_remove, name="shortlist_remove"),
    path("shortlist/<int:pk>/note/", views.shortlist_note, name="shortlist_note"),
    path("shortlist/export.<str:fmt>", views.shortlist_export, name="shortlist_export"),
    path("depict.svg", views.depict, name="depict"),
]
