from django.urls import path

from . import views

app_name = "analysis"
urlpatterns = [
    path("new/", views.new_analysis, name="new"),
    path("esm/new/", views.new_esm, name="esm_new"),
    path("esm/<uuid:job_id>/contacts/<int:index>/", views.esm_contacts, name="esm_contacts"),
    path("atomica/new/", views.new_atomica, name="atomica_new"),
    path("atomica/sides/", views.atomica_sides, name="atomica_sides"),
    path("atomica/<uuid:job_id>/similar/<int:index>/", views.atomica_similar, name="atomica_similar"),
]
