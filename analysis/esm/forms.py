from __future__ import annotations

from django import forms

from workers.forms import JobForm

from .compute.catalog import ESM2_MODELS
from .inventory import DOWNLOADS, INSTALLED, MISSING, availability
from .kind import INCLUDE_CHOICES
from analysis.examples import EXAMPLES
from analysis.protparam.forms import AnalysisForm

INCLUDE_LABELS = {
    "mean": "Per-sequence mean embedding",
    "per_tok": "Per-residue embeddings",
    "bos": "BOS-token embedding",
    "contacts": "Contact map (predicted)",
}


class ModelSelect(forms.Select):
    """A select whose models no worker has are shown, greyed out."""

    def __init__(self, *args, disabled=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.disabled = set(disabled)

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value in self.disabled:
            option["attrs"]["disabled"] = True
        return option


def model_label(name: str, status: str) -> str:
    spec = ESM2_MODELS[name]
    label = f"{name} ({spec.parameters})"
    if status == INSTALLED:
        return f"{label}: installed"
    if status == DOWNLOADS:
        return f"{label}: downloads on first use ({spec.download_mb:,} MB)"
    if status == MISSING:
        return f"{label}: not installed"
    return label


class EsmForm(JobForm):
    # Choices, default and help come from the workers' reports (__init__).
    model = forms.ChoiceField(choices=[])
    sequences = forms.CharField(label="Paste sequences", required=False,
                                widget=forms.Textarea(attrs={"rows": 8}),
                                help_text="FASTA, or one bare sequence.")
    fasta_file = forms.FileField(label="…or upload a FASTA file", required=False)
    example = forms.ChoiceField(label="…or use an example", required=False,
                                choices=[("", "—")] + [(k, e.title) for k, e in EXAMPLES.items()])
    repr_layers = forms.CharField(initial="-1", help_text="Comma-separated; negative counts from the "
                                  "last layer (-1), 0 is the embedding layer, as in fair-esm.")
    include = forms.MultipleChoiceField(choices=[(i, INCLUDE_LABELS[i]) for i in INCLUDE_CHOICES],
                                        initial=["mean"], widget=forms.CheckboxSelectMultiple)
    long_sequences = forms.ChoiceField(choices=[
        ("truncate", "Truncate at 1022 residues (as fair-esm), with a warning"),
        ("window", "Embed the whole sequence in overlapping windows, stitched"),
    ], initial="truncate", widget=forms.RadioSelect)

    clean_fasta_file = AnalysisForm.clean_fasta_file

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        models = availability()
        field = self.fields["model"]
        names = models.ordered()
        # A model no worker has stays a valid choice, so that picking it anyway
        # (an old link, a worker that went away) gets clean_esm_params's answer.
        field.choices = [(n, model_label(n, models.status(n))) for n in names]
        field.widget = ModelSelect(choices=field.choices,
                                   disabled=[n for n in names if models.status(n) == MISSING])
        field.initial = models.default_model()
        if not models.reported:
            field.help_text = ("No GPU worker has reported its models yet, so which are installed is "
                               "not known: the job waits for a worker, and fails if it lacks the model.")
        elif models.installed:
            field.help_text = ("Published ESM-2 checkpoints (fair-esm); larger is slower. Installed ones "
                               "are listed first.")
        else:
            field.help_text = ("No ESM-2 model is installed on the GPU workers yet"
                               + ("; the first job downloads its model." if models.may_download
                                  else ": ask the operators to install one."))

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        sources = {"sequences": bool(data.get("sequences", "").strip()),
                   "fasta_file": data.get("fasta_file") is not None,
                   "example": bool(data.get("example"))}
        if sum(sources.values()) != 1:
            raise forms.ValidationError("Give sequences in exactly one way: paste, upload or example.")
        field = next(k for k, on in sources.items() if on)
        params = {"model": data["model"], "repr_layers": data["repr_layers"],
                  "include": data["include"], "long_sequences": data["long_sequences"],
                  # The page analyses the good records and lists the others.
                  "skip_invalid": True}
        if field == "example":
            params["example"] = data["example"]
        else:
            params["fasta"] = data["sequences"] if field == "sequences" else data["fasta_file"]
            params["source"] = "paste" if field == "sequences" else "upload"
        # The input's errors belong to the field it came from.
        self.param_fields = {"fasta": field, "sequences": field, "example": field}
        data["params"] = params
        return data
