"""Which lab something is shared with: the lab picker every sharing form
uses (jobs of every kind, design targets and campaigns), the lab it offers
first, and the API's `lab` field.

A user may belong to several labs; their personal lab is only one of them.
The picker lists them all and starts on the lab last picked, so sharing with
a group lab is one choice, not a profile setting. An object's lab is also the
lab whose quota a job counts against.
"""

from __future__ import annotations

from django import forms

from workers.errors import ParamsError

from .models import Lab, Profile


def labs_of(user):
    return Lab.objects.filter(memberships__user=user).order_by("name")


def offered_lab(user) -> Lab | None:
    """The lab a picker starts on: the one last picked, else the default lab,
    as long as the user is still a member."""
    labs = labs_of(user)
    profile = user.profile
    for lab_id in (profile.last_lab_id, profile.default_lab_id):
        if lab_id is not None:
            lab = labs.filter(pk=lab_id).first()
            if lab is not None:
                return lab
    return labs.first()


def remember_lab(user, lab: Lab | None) -> None:
    if lab is not None:
        Profile.objects.filter(user=user).update(last_lab=lab)


def lab_from_api(user, value) -> Lab | None:
    """The API's `lab` (an id, or a slug): one of the user's labs, or a 400
    naming `lab`. None leaves the choice to the default."""
    if value is None or value == "":
        return None
    labs = labs_of(user)
    if isinstance(value, bool):
        lab = None
    elif isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        lab = labs.filter(pk=int(value)).first()
    else:
        lab = labs.filter(slug=str(value)).first()
    if lab is None:
        # The same answer for a lab that exists without you as for none at all.
        raise ParamsError("lab", f"You are not a member of a lab “{value}”.")
    return lab


class SharingForm(forms.Form):
    """Base of every form that shares what it creates: a `shared` box and a
    `lab` picker, shown last. Takes `user=`."""

    share_label = "Share with the lab below"
    lab_help = "Its members see what you share with it; a job counts against its quota."

    shared = forms.BooleanField(required=False)
    lab = forms.ModelChoiceField(queryset=Lab.objects.none(), required=False, empty_label=None)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.offered_lab = offered_lab(user)
        field = self.fields["lab"]
        field.queryset = labs_of(user)
        field.initial = self.offered_lab
        field.error_messages["invalid_choice"] = "Choose one of your labs."
        field.help_text = self.lab_help
        self.fields["shared"].label = self.share_label
        self.order_fields([n for n in self.fields if n not in ("shared", "lab")] + ["shared", "lab"])

    def clean_lab(self):
        # A form posted without a lab (a script, say) gets the lab offered.
        return self.cleaned_data.get("lab") or self.offered_lab

    def chosen_lab(self) -> Lab | None:
        """The lab picked, remembered as the next one offered."""
        lab = self.cleaned_data.get("lab")
        remember_lab(self.user, lab)
        return lab
