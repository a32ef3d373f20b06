"""The public datasets that ship with the project (files in `training/data/`,
provenance in `training/data/SOURCES.md`): what each column is, its task, its
citation and the split MoleculeNet reports on, so the portal can load them as
Dataset records and the benchmark can train on them the published way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .table import CLASSIFICATION, REGRESSION

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

MOLECULENET = ("Wu, Z. et al. MoleculeNet: a benchmark for molecular machine learning. "
               "Chem. Sci. 9, 513–530 (2018).")
TOX21_ASSAYS = ("NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
                "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53")


@dataclass(frozen=True)
class BuiltinDataset:
    name: str                    # short key: "esol"
    title: str
    file: str                    # in DATA_DIR
    smiles_column: str
    targets: dict                # column -> task
    name_column: str             # the molecules' names or ids, kept with the table
    description: str
    citation: str
    split: str                   # the split MoleculeNet reports on
    units: str = ""

    @property
    def path(self) -> Path:
        return DATA_DIR / self.file

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def load(self, limits=None):
        """The dataset as a `Table`, parsed like any upload."""
        from .datasets import DatasetLimits, parse_dataset

        return parse_dataset(self.read_bytes(), self.file, self.smiles_column, dict(self.targets),
                             keep_columns=(self.name_column,), limits=limits or DatasetLimits())


BUILTIN_DATASETS = (
    BuiltinDataset(
        name="esol", title="ESOL (Delaney) aqueous solubility", file="delaney-processed.csv",
        smiles_column="smiles", targets={"measured log solubility in mols per litre": REGRESSION},
        name_column="Compound ID", units="log10(mol/L)", split="random",
        description="Measured aqueous solubility of 1128 small organic molecules (log mol/L); the file's "
                    "ESOL-predicted column is Delaney's own model and not a target.",
        citation="Delaney, J. S. ESOL: estimating aqueous solubility directly from molecular structure. "
                 "J. Chem. Inf. Comput. Sci. 44, 1000–1005 (2004). " + MOLECULENET),
    BuiltinDataset(
        name="freesolv", title="FreeSolv hydration free energy", file="SAMPL.csv",
        smiles_column="smiles", targets={"expt": REGRESSION}, name_column="iupac", units="kcal/mol",
        split="random",
        description="Experimental hydration free energies of 642 small neutral molecules in water (kcal/mol); "
                    "`calc` is the alchemical calculation and not a target.",
        citation="Mobley, D. L. & Guthrie, J. P. FreeSolv: a database of experimental and calculated hydration "
                 "free energies, with input files. J. Comput. Aided Mol. Des. 28, 711–720 (2014). " + MOLECULENET),
    BuiltinDataset(
        name="lipophilicity", title="Lipophilicity (logD7.4)", file="Lipophilicity.csv",
        smiles_column="smiles", targets={"exp": REGRESSION}, name_column="CMPD_CHEMBLID", units="logD",
        split="random",
        description="Octanol/water distribution coefficient at pH 7.4 of 4200 compounds, measured by "
                    "AstraZeneca and deposited in ChEMBL.",
        citation="AstraZeneca. Experimental in vitro DMPK and physicochemical data on a set of publicly "
                 "disclosed compounds. ChEMBL, CHEMBL3301361 (2015). " + MOLECULENET),
    BuiltinDataset(
        name="bbbp", title="BBBP blood–brain-barrier penetration", file="BBBP.csv",
        smiles_column="smiles", targets={"p_np": CLASSIFICATION}, name_column="name", split="scaffold",
        description="Whether a compound penetrates the blood–brain barrier (1 = penetrates), 2039 compounds.",
        citation="Martins, I. F., Teixeira, A. L., Pinheiro, L. & Falcao, A. O. A Bayesian approach to in silico "
                 "blood-brain barrier penetration modeling. J. Chem. Inf. Model. 52, 1686–1697 (2012). "
                 + MOLECULENET),
    BuiltinDataset(
        name="tox21", title="Tox21 (12 assays)", file="tox21.csv", smiles_column="smiles",
        targets={assay: CLASSIFICATION for assay in TOX21_ASSAYS}, name_column="mol_id", split="random",
        description="Outcomes of 12 nuclear-receptor and stress-response assays for 7831 compounds; an empty "
                    "cell means the compound was not measured in that assay.",
        citation="Tox21 Data Challenge 2014, NIH NCATS (https://tripod.nih.gov/tox21/challenge/). "
                 + MOLECULENET),
)

_BY_NAME = {d.name: d for d in BUILTIN_DATASETS}


def get_builtin(name: str) -> BuiltinDataset:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"No built-in dataset {name!r} (there are {', '.join(_BY_NAME)}).") from None
