from __future__ import annotations

from django import forms
from django.conf import settings

from accounts.sharing import SharingForm
from workers.errors import ParamsError
from workers.forms import JobForm

from . import kind as P
from . import model_properties
from .compute.structures import parse_structure
from .models import BindingSite, Campaign, ShortlistEntry, Target


def read_upload(upload, field_label: str) -> bytes:
    cap = settings.BIOFM_UPLOAD_MAX_BYTES
    if upload.size > cap:
        raise forms.ValidationError(
            f"“{upload.name}” is {upload.size / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB.")
    return upload.read()


def _text(upload, what: str) -> str:
    raw = read_upload(upload, what)
    if b"\x00" in raw:
        raise forms.ValidationError(f"“{upload.name}” is a binary file, not {what}.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise forms.ValidationError(f"“{upload.name}” is not UTF-8 text, so not {what}.") from None


class DesignJobForm(JobForm):
    def add_params_error(self, exc: ParamsError) -> None:
        # A nested parameter (ligands[2].smiles) is named, as the API names it.
        if "." in exc.field or "[" in exc.field:
            exc = ParamsError(exc.field, f"{exc.field}: {exc.message}")
        super().add_params_error(exc)


class TargetForm(SharingForm):
    share_label = "Add to the library of the lab below"
    lab_help = "Its members can dock into this target and start campaigns on it."

    name = forms.CharField(max_length=200)
    structure = forms.FileField(help_text="PDB (.pdb) or mmCIF (.cif) file of the protein, in the frame "
                                          "your binding site coordinates use.")

    def clean_structure(self):
        upload = self.cleaned_data["structure"]
        raw = read_upload(upload, "structure")
        try:
            self.parsed = parse_structure(raw, upload.name)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
        upload.seek(0)
        return upload


class SiteForm(forms.Form):
    name = forms.CharField(max_length=200)
    method = forms.ChoiceField(choices=BindingSite.METHODS, widget=forms.RadioSelect, initial="ligand")
    ligand_code = forms.CharField(label="Co-crystallised ligand in the structure", required=False,
                                  help_text="Its HETATM code, e.g. E20, or CHAIN:CODE for one copy (A:E20)")
    ligand_file = forms.FileField(label="…or the ligand as SDF/MOL (same frame as the structure)",
                                  required=False)
    cutoff = forms.FloatField(label="Pocket residues within (Å)", initial=5.0, min_value=1.0, max_value=12.0)
    residues = forms.CharField(label="Residues", required=False,
                               help_text="CHAIN:NUMBER or CHAIN:NAME:NUMBER, comma-separated, e.g. B:32, B:PHE:36")
    center_x = forms.FloatField(required=False, label="Centre x (Å)")
    center_y = forms.FloatField(required=False, label="Centre y (Å)")
    center_z = forms.FloatField(required=False, label="Centre z (Å)")
    size_x = forms.FloatField(required=False, label="Size x (Å)", initial=20)
    size_y = forms.FloatField(required=False, label="Size y (Å)", initial=20)
    size_z = forms.FloatField(required=False, label="Size z (Å)", initial=20)

    def __init__(self, *args, target: Target, **kwargs):
        super().__init__(*args, **kwargs)
        self.target = target

    def clean_ligand_file(self):
        upload = self.cleaned_data.get("ligand_file")
        return _text(upload, "an SDF/MOL file") if upload else ""

    def clean(self):
        from design.compute import sites

        data = super().clean()
        if self.errors:
            return data
        method = data["method"]
        atoms = sites.read_protein_atoms(self.target.pdb_text())
        try:
            if method == "ligand" and data.get("ligand_code"):
                field = "ligand_code"
                site = sites.site_from_hetero(atoms, data["ligand_code"], cutoff=data["cutoff"])
                given = {"ligand_code": data["ligand_code"], "cutoff": data["cutoff"]}
            elif method == "ligand":
                if not data["ligand_file"]:
                    self.add_error("ligand_code", "Name the ligand's HETATM code, or upload it as SDF/MOL.")
                    return data
                field = "ligand_file"
                site = sites.site_from_ligand(atoms, data["ligand_file"], cutoff=data["cutoff"],
                                              limits=P.molecule_limits("properties"))
                given = {"ligand_sdf": data["ligand_file"], "cutoff": data["cutoff"]}
            elif method == "residues":
                residues = [r.strip() for r in data["residues"].replace(";", ",").split(",") if r.strip()]
                field = "residues"
                site = sites.site_from_residues(atoms, residues)
                given = {"residues": residues}
            else:
                field = "center_x"
                center = [data[f"center_{a}"] for a in "xyz"]
                size = [data[f"size_{a}"] for a in "xyz"]
                if None in center or None in size:
                    self.add_error("center_x", "A box needs a centre and a size on all three axes.")
                    return data
                site = sites.site_from_box(atoms, center, size)
                given = {"center": center, "size": size}
        except ValueError as exc:
            self.add_error(field, str(exc))
            return data
        data["site"], data["given"] = site, given
        return data


class UsersTargetAndSite:
    """For forms with ``target`` and ``site`` fields: offer only the
    targets and sites the user may see."""

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["target"].queryset = Target.objects.visible_to(user)
        self.fields["site"].queryset = BindingSite.objects.visible_to(user).select_related("target")


class CampaignForm(UsersTargetAndSite, SharingForm):
    lab_help = "Its members see the campaign when you share it."

    name = forms.CharField(max_length=200)
    target = forms.ModelChoiceField(queryset=Target.objects.none())
    site = forms.ModelChoiceField(queryset=BindingSite.objects.none(), required=False,
                                  help_text="Needed for docking; a campaign without one optimises properties only.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)

    def clean(self):
        data = super().clean()
        if data.get("site") and data.get("target") and data["site"].target_id != data["target"].pk:
            self.add_error("site", "That binding site belongs to another target.")
        return data


def _property_choices(user):
    """The numeric properties, then every target of the registered models the user may see."""
    return [(k, f"{s.label} ({k})") for k, s in P.numeric_properties().items()] + model_properties.choices(user)


class RunForm(DesignJobForm):
    param_fields = {"objectives": "objective_1", "filters": "mw_min", "filters.mw_max": "mw_max",
                    "filters.no_alerts": "no_pains", "docking": "dock", "docking.enabled": "dock",
                    "docking.exhaustiveness": "dock_exhaustiveness", "docking.max_dockings": "max_dockings",
                    "docking.weight": "dock_weight", "scatter": "scatter_x", "scatter.y": "scatter_y"}

    seeds = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False,
                            help_text="One SMILES per line; empty starts from common drug ring systems.")
    mode = forms.ChoiceField(choices=[("weighted", "Weighted sum"), ("pareto", "Pareto front (NSGA-II)")])
    population_size = forms.IntegerField(initial=50, min_value=2, max_value=P.MAX_POPULATION)
    generations = forms.IntegerField(initial=10, min_value=1, max_value=P.MAX_GENERATIONS)
    random_seed = forms.IntegerField(initial=0, min_value=0)
    brics_seeds = forms.IntegerField(label="BRICS recombinations of the seeds", initial=0, min_value=0,
                                     max_value=500)
    no_pains = forms.BooleanField(label="No PAINS alerts", required=False, initial=True)
    no_brenk = forms.BooleanField(label="No Brenk alerts", required=False)
    mw_min = forms.FloatField(label="MW at least", required=False)
    mw_max = forms.FloatField(label="MW at most", required=False, initial=500)
    dock = forms.BooleanField(label="Dock every molecule (Vina; slow)", required=False)
    dock_exhaustiveness = forms.IntegerField(initial=4, min_value=1, max_value=P.MAX_GA_EXHAUSTIVENESS)
    max_dockings = forms.IntegerField(label="At most this many molecules docked", initial=100, min_value=1,
                                      max_value=P.MAX_GA_DOCKINGS)
    dock_weight = forms.FloatField(initial=1.0, min_value=0.001)
    scatter_x = forms.ChoiceField(required=False)
    scatter_y = forms.ChoiceField(required=False)

    N_OBJECTIVES = 3

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        choices = _property_choices(self.user)
        for n in range(1, self.N_OBJECTIVES + 1):
            self.fields[f"objective_{n}"] = forms.ChoiceField(
                label=f"Objective {n}", choices=([] if n == 1 else [("", "—")]) + choices, required=n == 1,
                initial="qed" if n == 1 else "")
            self.fields[f"direction_{n}"] = forms.ChoiceField(choices=[("max", "maximise"), ("min", "minimise")])
            self.fields[f"weight_{n}"] = forms.FloatField(initial=1.0, min_value=0.001)
        axes = [("", "default")] + choices + [("docking_score", "Vina score (docking_score)")]
        self.fields["scatter_x"].choices = self.fields["scatter_y"].choices = axes

    @classmethod
    def initial_from(cls, params: dict) -> dict:
        """Form values reproducing a run's parameters, for a rerun with changes."""
        initial = {k: params[k] for k in ("mode", "population_size", "generations", "random_seed",
                                          "brics_seeds") if k in params}
        initial["seeds"] = "\n".join(params.get("seeds", []))
        f = params.get("filters", {})
        initial.update(no_pains="PAINS" in f.get("no_alerts", []), no_brenk="Brenk" in f.get("no_alerts", []),
                       mw_min=f.get("mw_min"), mw_max=f.get("mw_max"))
        for n, obj in enumerate(params.get("objectives", [])[:cls.N_OBJECTIVES], start=1):
            initial.update({f"objective_{n}": obj["property"], f"direction_{n}": obj["direction"],
                            f"weight_{n}": obj["weight"]})
        d = params.get("docking", {})
        if d.get("enabled"):
            initial.update(dock=True, dock_exhaustiveness=d["exhaustiveness"], max_dockings=d["max_dockings"],
                           dock_weight=d["weight"])
        s = params.get("scatter", {})
        initial.update(scatter_x=s.get("x", ""), scatter_y=s.get("y", ""))
        return initial

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        objectives = [{"property": data[f"objective_{n}"], "direction": data[f"direction_{n}"],
                       "weight": data[f"weight_{n}"]}
                      for n in range(1, self.N_OBJECTIVES + 1) if data.get(f"objective_{n}")]
        params = {
            "campaign_id": self.campaign.pk, "seeds": data["seeds"], "objectives": objectives,
            "mode": data["mode"], "population_size": data["population_size"],
            "generations": data["generations"], "random_seed": data["random_seed"],
            "brics_seeds": data["brics_seeds"],
            "filters": {"no_alerts": [c for c, on in (("PAINS", data["no_pains"]), ("Brenk", data["no_brenk"])) if on],
                        "mw_min": data["mw_min"], "mw_max": data["mw_max"]},
            "docking": {"enabled": data["dock"], "exhaustiveness": data["dock_exhaustiveness"],
                        "max_dockings": data["max_dockings"], "weight": data["dock_weight"]},
            "scatter": {"x": data["scatter_x"], "y": data["scatter_y"]},
        }
        data["params"] = params
        return data

    def field_for_param(self, param: str) -> str | None:
        # objectives[n] is the form's objective n + 1.
        if param.startswith("objectives["):
            n = param[len("objectives["):].split("]")[0]
            if n.isdigit() and f"objective_{int(n) + 1}" in self.fields:
                return f"objective_{int(n) + 1}"
        return super().field_for_param(param)


class PropertiesForm(DesignJobForm):
    molecules = forms.CharField(label="Paste SMILES", required=False,
                                widget=forms.Textarea(attrs={"rows": 8, "placeholder": "CCO ethanol\nc1ccccc1 benzene"}),
                                help_text="One SMILES per line (optionally followed by a name), or CSV with a header.")
    molecules_file = forms.FileField(label="…or upload CSV, SMILES or SDF", required=False)
    smiles_column = forms.CharField(required=False, help_text="CSV only; found automatically if empty.")
    model_properties = forms.MultipleChoiceField(
        label="Your registered models", required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Each adds its prediction, its uncertainty (ensemble std) and its applicability-domain flag.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Kept without choices too, so a posted model the user cannot see is refused, not ignored.
        field = self.fields["model_properties"]
        field.choices = model_properties.choices(self.user)
        if not field.choices:
            field.help_text = "None yet: a model registered from a finished training run appears here."

    def clean_molecules_file(self):
        upload = self.cleaned_data.get("molecules_file")
        if upload is None:
            return None
        self.filename = upload.name
        return _text(upload, "CSV, SMILES or SDF text")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        pasted, uploaded = data.get("molecules", "").strip(), data.get("molecules_file")
        if bool(pasted) == bool(uploaded):
            raise forms.ValidationError("Give molecules in exactly one way: paste or upload.")
        field = "molecules" if pasted else "molecules_file"
        params = {"molecules": pasted or uploaded, "smiles_column": data.get("smiles_column") or None}
        if data.get("model_properties"):
            params["model_properties"] = list(data["model_properties"])
        if uploaded:
            name = self.filename.lower()
            params["filename"] = self.filename
            params["format"] = ("sdf" if name.endswith((".sdf", ".sd", ".mol")) else
                                "csv" if name.endswith((".csv", ".tsv")) else None)
        self.param_fields = {"molecules": field, "format": field, "smiles": field}
        data["params"] = params
        return data

    def add_params_error(self, exc: ParamsError) -> None:
        # A CSV without the named (or any) SMILES column is the column field's error.
        if exc.field == "molecules" and "column" in exc.message:
            self.add_error("smiles_column", exc.message)
        else:
            super().add_params_error(exc)


class DockingForm(UsersTargetAndSite, DesignJobForm):
    param_fields = {"target_id": "target", "site_id": "site", "center": "site", "size": "site",
                    "ligands_sdf": "ligands_file", "molecules": "ligands_file", "format": "ligands_file"}

    target = forms.ModelChoiceField(queryset=Target.objects.none())
    site = forms.ModelChoiceField(queryset=BindingSite.objects.none())
    ligands = forms.CharField(required=False,
                              widget=forms.Textarea(attrs={"rows": 4, "placeholder": "Nc1nc(N)c2c(Sc3ccccc3)cccc2n1 TQ3"}),
                              help_text="One SMILES per line, optionally followed by a name. Invalid lines are "
                                        "left out and listed with the result.")
    ligands_file = forms.FileField(label="…or upload SDF, SMILES or CSV", required=False,
                                   help_text="Every record is docked (3D coordinates are not used: each ligand "
                                             "gets a fresh conformer).")
    exhaustiveness = forms.IntegerField(initial=8, min_value=1, max_value=64,
                                        help_text="Vina's search effort; 8 is Vina's default.")
    n_poses = forms.IntegerField(label="Number of poses", initial=9, min_value=1, max_value=20)
    cpu = forms.IntegerField(label="CPU cores (0 = all)", initial=0, min_value=0, max_value=256)
    random_seed = forms.IntegerField(initial=0, min_value=0)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["ligands"].help_text += f" At most {P.max_dock_ligands()} ligands per job."

    def clean_ligands_file(self):
        upload = self.cleaned_data.get("ligands_file")
        if upload is None:
            return None
        self.filename = upload.name
        return _text(upload, "SDF, SMILES or CSV text")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        pasted, uploaded = (data.get("ligands") or "").strip(), data.get("ligands_file")
        if bool(pasted) == bool(uploaded):
            raise forms.ValidationError("Give ligands in exactly one way: paste SMILES or upload a file.")
        params = {"target_id": data["target"].pk, "site_id": data["site"].pk,
                  **{k: data[k] for k in ("exhaustiveness", "n_poses", "cpu", "random_seed")}}
        if pasted:
            ligands = []
            for n, line in enumerate(l for l in pasted.splitlines() if l.strip()):
                parts = line.split(None, 1)
                ligands.append({"smiles": parts[0],
                                "name": parts[1].strip() if len(parts) > 1 else f"ligand{n + 1}"})
            params["ligands"] = ligands
        else:
            name = self.filename.lower()
            params["molecules"] = uploaded
            params["format"] = ("sdf" if name.endswith((".sdf", ".sd", ".mol")) else
                                "csv" if name.endswith((".csv", ".tsv")) else None)
        data["params"] = params
        return data

    def field_for_param(self, param: str) -> str | None:
        # ligands[n].smiles is a line of the pasted list.
        if param.startswith("ligands["):
            return "ligands"
        return super().field_for_param(param)


class ShortlistNoteForm(forms.ModelForm):
    class Meta:
        model = ShortlistEntry
        fields = ["note"]
        widgets = {"note": forms.Textarea(attrs={"rows": 2})}


class ShortlistForm(forms.Form):
    smiles = forms.CharField(max_length=2000)
    name = forms.CharField(max_length=200, required=False)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    source_job = forms.UUIDField(required=False)
