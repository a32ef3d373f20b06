"""Training's web forms: thin adapters from form fields to what
`training.compute.datasets` takes (datasets, at the top) and to the run
parameters (runs, in their section below)."""

from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.sharing import SharingForm
from training.compute.datasets import SDF_MOLECULE, DatasetError, read_preview
from training.compute.table import TASKS

# ---------------------------------------------------------------- datasets

DATASET_FORMATS = "CSV (a header row, any delimiter) or SDF (targets as SD properties)"
INFER = ""
TASK_CHOICES = [(INFER, "infer from the values")] + [(t, t) for t in TASKS]


def read_capped(upload) -> bytes:
    """The upload's bytes, or a form error naming the file when it exceeds the site's upload cap."""
    cap = settings.BIOFM_UPLOAD_MAX_BYTES
    if upload.size > cap:
        raise forms.ValidationError(
            f"“{upload.name}” is {upload.size / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB.")
    return upload.read()


class DatasetFileForm(forms.Form):
    """Step 1: the file. Its first rows are shown on the next step."""

    file = forms.FileField(label="Dataset file", help_text=DATASET_FORMATS + ".", error_messages={
        "empty": "The file is empty: a dataset needs a header row and at least two molecules."})

    def clean_file(self):
        upload = self.cleaned_data["file"]
        data = read_capped(upload)
        if not data.strip():
            raise forms.ValidationError(f"“{upload.name}” is empty.")
        from training.models.datasets import dataset_limits

        try:
            self.preview = read_preview(data, upload.name, limits=dataset_limits())
        except DatasetError as exc:
            raise forms.ValidationError(f"“{upload.name}”: {exc}") from None
        self.data_bytes = data
        return upload


class DatasetForm(SharingForm):
    """Step 2: what the file's columns are. One checkbox and one task per
    column of the preview (fields `target_<i>` / `task_<i>`, by position,
    since a column's name can be any text)."""

    share_label = "Share with the lab below"
    lab_help = "Its members can see this dataset and train models on it."

    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    smiles_column = forms.ChoiceField(label="SMILES column", required=False)
    keep_columns = forms.MultipleChoiceField(
        label="Also keep these columns", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="For example a column that assigns rows to train/val/test, to split by it later.")

    def __init__(self, *args, preview, **kwargs):
        super().__init__(*args, **kwargs)
        self.preview = preview
        columns = list(preview.columns)
        smiles = self.fields["smiles_column"]
        smiles.choices = [(c, c) for c in columns]
        smiles.initial = preview.smiles_column
        smiles.required = preview.format != "sdf"
        if preview.format == "sdf":
            smiles.help_text = (f"“{SDF_MOLECULE}” takes each record's molecule; a property holding SMILES "
                                "can be chosen instead.")
        self.fields["keep_columns"].choices = [(c, c) for c in columns if c != SDF_MOLECULE]
        numeric = [c for c in columns if preview.targets.get(c) is not None]
        self.column_fields = []
        for i, column in enumerate(columns):
            if column == SDF_MOLECULE:
                continue
            inferred = preview.targets.get(column)
            target = forms.BooleanField(label=column, required=False,
                                        initial=len(numeric) == 1 and column == numeric[0])
            task = forms.ChoiceField(label=f"Task of “{column}”", choices=TASK_CHOICES, required=False,
                                     initial=inferred or INFER)
            self.fields[f"target_{i}"] = target
            self.fields[f"task_{i}"] = task
            self.column_fields.append({"column": column, "index": i, "inferred": inferred,
                                       "target": f"target_{i}", "task": f"task_{i}"})

    def columns_table(self) -> list[dict]:
        """Per column: its name, what was inferred, its two bound fields, and its preview values."""
        rows = []
        for spec in self.column_fields:
            i = spec["index"]
            values = [row[i] if i < len(row) else "" for row in self.preview.rows]
            rows.append({**spec, "target_field": self[spec["target"]], "task_field": self[spec["task"]],
                         "values": values})
        return rows

    def clean(self):
        data = super().clean()
        targets = {}
        for spec in self.column_fields:
            if data.get(spec["target"]):
                targets[spec["column"]] = data.get(spec["task"]) or None
        if not targets:
            raise forms.ValidationError("Tick at least one target column.")
        smiles = data.get("smiles_column")
        if smiles and smiles in targets:
            self.add_error("smiles_column", f"“{smiles}” is ticked as a target too; a column is one or the other.")
        if smiles == SDF_MOLECULE:
            smiles = None
        data["smiles_column"] = smiles or None
        data["targets"] = targets
        return data

