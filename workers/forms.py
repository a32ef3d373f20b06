"""The base of every job form.

A job form is a thin adapter: its clean() checks what only a form can (an
upload is text, one input was given) and turns its fields into the raw
parameters, `cleaned_data["params"]`. It never calls the kind's clean_params:
the submission page hands the raw parameters to lifecycle.submit, where the
kind checks them once, and shows a ParamsError next to the field it names.
"""

from __future__ import annotations

from django import forms

from accounts.sharing import SharingForm

from .errors import ParamsError


class JobForm(SharingForm):
    title = forms.CharField(max_length=200, required=False, help_text="Optional; shown in your job list.")

    # Parameter name (before any "." or "[") -> the form field its errors
    # belong to, where the names differ. A parameter named like a field goes
    # to that field; any other error is shown above the form.
    param_fields: dict[str, str] = {}

    def field_for_param(self, param: str) -> str | None:
        root = param.split(".")[0].split("[")[0]
        for name in (param, root):
            if name in self.param_fields:
                return self.param_fields[name]
        return root if root in self.fields else None

    def add_params_error(self, exc: ParamsError) -> None:
        self.add_error(self.field_for_param(exc.field), exc.message)


class JobListFilter(forms.Form):
    """The job list's search and date filters (?q=, ?since=, ?until=)."""
    q = forms.CharField(label="Title contains", required=False, max_length=200)
    since = forms.DateField(label="Submitted from", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label="Submitted until", required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end date is before the start date.")
            data.pop("until")
        return data
