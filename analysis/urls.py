from django.urls import path

from .atomica import views as atomica
from .esm import views as esm
from .protparam import views as protparam

app_name = "analysis"
urlpatterns = [
    path("new/", protparam.new_analysis, name="new"),
    path("<uuid:job_id>/table/", protparam.protparam_table, name="protparam_table"),
    path("esm/new/", esm.new_esm, name="esm_new"),
    path("esm/<uuid:job_id>/contacts/<int:index>/", esm.esm_contacts, name="esm_contacts"),
    path("atomica/new/", atomica.new_atomica, name="atomica_new"),
    path("atomica/inputs/<uuid:input_id>/", atomica.atomica_input, name="atomica_input"),
    path("atomica/sides/", atomica.atomica_sides, name="atomica_sides"),
    path("atomica/<uuid:job_id>/similar/<int:index>/", atomica.atomica_similar, name="atomica_similar"),
]
