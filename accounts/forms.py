"""Forms for the profile page (preferences, API tokens) and the lab pages."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from .invitations import sent_today
from .models import Lab, Membership, Profile

_TRUE = {"on", "true", "1", "yes"}
_FALSE = {"off", "false", "0", "no", ""}


class StrictCheckboxInput(forms.CheckboxInput):
    def value_from_datadict(self, data, files, name):
        # Django's checkbox reads any non-empty string as "on"; hand the raw
        # value to the field instead so that a typo from a script is refused
        # rather than silently switching a notification on.
        if name not in data:
            return False
        return data.get(name)

    def format_value(self, value):
        # Re-rendered after an error, the box must post "on" again, not echo
        # the rejected value back into its value attribute.
        return None


class StrictBooleanField(forms.BooleanField):
    widget = StrictCheckboxInput
    default_error_messages = {"invalid": "Tick the box or leave it empty."}

    def to_python(self, value):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(self.error_messages["invalid"], code="invalid")


class PreferencesForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["default_lab", "notify_succeeded", "notify_failed", "notify_cancelled"]
        field_classes = {
            "notify_succeeded": StrictBooleanField,
            "notify_failed": StrictBooleanField,
            "notify_cancelled": StrictBooleanField,
        }
        help_texts = {"default_lab": "Forms offer the lab you last shared with; before that, and for API "
                                     "submissions that name no lab, this one."}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["default_lab"]
        field.queryset = Lab.objects.filter(memberships__user=user).order_by("name")
        # A job without a lab escapes every quota, so "no default" is not offered.
        field.required = True
        field.empty_label = None
        field.error_messages["invalid_choice"] = "Choose one of your labs."


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        help_text="What the token is for, e.g. “laptop scripts” or “CI”.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class LabForm(forms.ModelForm):
    class Meta:
        model = Lab
        fields = ["name"]
        labels = {"name": "Lab name"}

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("Give the lab a name.")
        return name


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="Email address",
        help_text="They get an email with a link, and join the lab only if they accept. "
                  "Someone without an account is asked to sign up with this address.",
    )

    def __init__(self, *args, lab: Lab, inviter, **kwargs):
        super().__init__(*args, **kwargs)
        self.lab = lab
        self.inviter = inviter

    def clean_email(self):
        email = self.cleaned_data["email"].strip().lower()
        # Members' addresses are on the lab page already, so saying so tells
        # the owner nothing new; any other address gets the same answer.
        if Membership.objects.filter(lab=self.lab, user__email__iexact=email).exists():
            raise ValidationError(f"{email} is already a member of this lab.", code="member")
        limit = settings.BIOFM_LAB_INVITATIONS_PER_DAY
        if sent_today(self.inviter) >= limit:
            raise ValidationError(
                f"You have sent {limit} invitations in the last 24 hours, the most allowed; "
                "try again later.", code="limit")
        return email
