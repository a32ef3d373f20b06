from django.urls import path

from . import views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/preferences/", views.update_preferences, name="profile_preferences"),
    path("profile/tokens/", views.create_token, name="token_create"),
    path("profile/tokens/<int:token_id>/revoke/", views.revoke_token, name="token_revoke"),
    # GET lists the user's labs, POST creates one; a separate "create" path
    # would shadow a lab whose slug happened to be that word.
    path("labs/", views.labs, name="labs"),
    path("labs/<slug:slug>/", views.lab_detail, name="lab_detail"),
    path("labs/<slug:slug>/members/", views.lab_add_member, name="lab_add_member"),
    path("labs/<slug:slug>/members/<int:membership_id>/role/", views.lab_set_role,
         name="lab_set_role"),
    path("labs/<slug:slug>/members/<int:membership_id>/remove/", views.lab_remove_member,
         name="lab_remove_member"),
    path("labs/<slug:slug>/leave/", views.lab_leave, name="lab_leave"),
]
