"""The predict form: a thin adapter from its fields to training.predict's parameters."""

from __future__ import annotations

from django import forms

# design's upload reader: the size cap, and binary / non-UTF-8 files refused by name.
from design.forms import _text as upload_text
from workers.forms import JobForm

from ..compute.scoring import format_from_filename
from ..models import ModelVersion


class PredictForm(JobForm):
    param_fields = {"model_id": "model", "smiles": "molecules", "format": "molecules_file"}

    model = forms.ModelChoiceField(queryset=ModelVersion.objects.none(), empty_label=None,
                                   help_text="Your registered models and those shared with your labs.")
    molecules = forms.CharField(label="Paste SMILES", required=False,
                                widget=forms.Textarea(attrs={"rows": 8, "placeholder": "CCO ethanol\nc1ccccc1O phenol"}),
                                help_text="One SMILES per line, optionally followed by a name.")
    molecules_file = forms.FileField(label="…or upload CSV, SDF or SMILES", required=False)
    smiles_column = forms.CharField(required=False, help_text="CSV only; found by its name (smiles) if empty.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["model"]
        field.queryset = ModelVersion.objects.visible_to(self.user).order_by("name", "-version")
        field.label_from_instance = lambda model: model.display_name

    def clean_molecules_file(self):
        upload = self.cleaned_data.get("molecules_file")
        return None if upload is None else (upload.name, upload_text(upload, "CSV, SDF or SMILES text"))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        pasted, uploaded = (data.get("molecules") or "").strip(), data.get("molecules_file")
        if bool(pasted) == bool(uploaded):
            raise forms.ValidationError("Give the molecules in exactly one way: paste them or upload a file.")
        params = {"model_id": data["model"].pk, "smiles_column": data.get("smiles_column") or None}
        if pasted:
            params.update(molecules=pasted, format="smi")
        else:
            name, text = uploaded
            params.update(molecules=text, filename=name, format=format_from_filename(name))
            self.param_fields = {**self.param_fields, "molecules": "molecules_file"}
        data["params"] = params
        return data
