"""Training's web forms: thin adapters from form fields to what
`training.compute.datasets` takes (datasets, at the top) and to the run
parameters (runs, in their section below)."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings

from accounts.sharing import SharingForm
from workers.forms import JobForm
from training.compute.datasets import SDF_MOLECULE, DatasetError, read_preview
from training.compute.table import TASKS

from .models import Dataset

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


# ---------------------------------------------------------------- runs

class RunForm(JobForm):
    """A training run: a thin adapter to training.train's parameters, which
    its clean_params checks (against the dataset and the family's schema)."""

    dataset = forms.ModelChoiceField(queryset=Dataset.objects.none(), empty_label=None)
    targets = forms.CharField(required=False, help_text="Target columns to learn, comma-separated; "
                                                        "blank: every target of the dataset.")
    family = forms.ChoiceField(choices=())
    hparams = forms.CharField(label="Hyperparameters", required=False, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text='JSON, e.g. {"max_epochs": 30, "depth": 4}; the family\'s defaults '
                                        "for the rest (listed below).")
    split_method = forms.ChoiceField(label="Split", choices=())
    train_size = forms.FloatField(initial=0.8)
    val_size = forms.FloatField(label="Validation size", initial=0.1,
                                help_text="The torch families stop early and keep their best epoch on it.")
    test_size = forms.FloatField(initial=0.1, help_text="0: no test set, so no test metrics.")
    split_seed = forms.IntegerField(initial=0)
    split_column = forms.CharField(required=False, help_text="For the split by column: the kept column "
                                                             "naming each row's set (train, val, test).")
    folds = forms.IntegerField(initial=0, help_text="k-fold cross-validation (3 to 10 folds); 0: one split.")
    ensemble = forms.IntegerField(initial=1, help_text="Members trained with seeds seed, seed+1, …: the "
                                                       "prediction is their mean, the uncertainty their sd.")
    seed = forms.IntegerField(initial=0)

    param_fields = {"dataset_id": "dataset", "split.method": "split_method", "split.sizes": "train_size",
                    "split.seed": "split_seed", "split.column": "split_column"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from .compute.families import all_families
        from .compute.splits import SPLIT_METHODS

        self.fields["dataset"].queryset = Dataset.objects.visible_to(self.user).order_by("name", "-version")
        # Dicts, not the classes: a template would call a class.
        self.families = [{"name": f.name, "label": f.label, "method": f.method,
                          "hyperparameters": [h.as_dict() for h in f.hyperparameters]} for f in all_families()]
        self.fields["family"].choices = [(f["name"], f["label"]) for f in self.families]
        self.fields["split_method"].choices = [(name, text.split(":")[0]) for name, text in SPLIT_METHODS.items()]
        self.split_methods = SPLIT_METHODS

    def clean_hparams(self):
        text = self.cleaned_data["hparams"].strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}).") from None
        if not isinstance(value, dict):
            raise forms.ValidationError('Give an object of name: value, e.g. {"max_epochs": 30}.')
        return value

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        data["params"] = {
            "dataset_id": data["dataset"].pk,
            "targets": data["targets"],
            "family": data["family"],
            "hparams": data["hparams"],
            "split": {"method": data["split_method"], "seed": data["split_seed"],
                      "sizes": [data["train_size"], data["val_size"], data["test_size"]],
                      "column": data["split_column"] or None},
            "folds": data["folds"],
            "ensemble": data["ensemble"],
            "seed": data["seed"],
        }
        return data


# ---------------------------------------------------------------- model registry

class RegisterModelForm(SharingForm):
    """Register a run's model under a name; the version is the next for that name."""

    share_label = "Share the model with the lab below"
    lab_help = "Its members can see the model, its card, and predict with it."

    name = forms.CharField(max_length=200, help_text="Versions of one name are numbered v1, v2, …; "
                                                     "the name is shown with the method and test metric.")

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the model a name.")
        if any(not ch.isprintable() for ch in name):
            raise forms.ValidationError("The name must be printable text.")
        return name
