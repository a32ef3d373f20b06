from django.urls import path

from . import views

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/preferences/", views.update_preferences, name="profile_preferences"),
    path("profile/tokens/", views.create_token, name="token_create"),
    path("profile/tokens/<int:token_id>/revoke/", views.revoke_token, name="token_revoke"),
    # The invitee's side; the link in the email carries the token.
    path("invitations/<int:invitation_id>/accept/", views.invitation_accept,
         name="invitation_accept"),
    path("invitations/<int:invitation_id>/decline/", views.invitation_decline,
         name="invitation_decline"),
    path("invitations/<str:token>/", views.invitation_link, name="invitation_link"),
    # GET lists the user's labs, POST creates one; a separate "create" path
    # would shadow a lab whose slug happened to be that word.
    path("labs/", views.labs, name="labs"),
    path("labs/<slug:slug>/", views.lab_detail, name="lab_detail"),
    path("labs/<slug:slug>/invitations/", views.lab_invite, name="lab_invite"),
    path("labs/<slug:slug>/invitations/<int:invitation_id>/revoke/", views.lab_revoke_invitation,
         name="lab_revoke_invitation"),
    path("labs/<slug:slug>/members/<int:membership_id>/role/", views.lab_set_role,
         name="lab_set_role"),
    path("labs/<slug:slug>/members/<int:membership_id>/remove/", views.lab_remove_member,
         name="lab_remove_member"),
    path("labs/<slug:slug>/leave/", views.lab_leave, name="lab_leave"),
]
