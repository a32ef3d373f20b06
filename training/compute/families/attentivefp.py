"""AttentiveFP: graph attention with a GRU readout (Xiong et al., J. Med. Chem. 2020), as
`torch_geometric.nn.models.AttentiveFP`, trained by our epoch loop.

Atoms and bonds are featurised here from RDKit, after the paper's table 1 (39 atom and 10 bond
features); PyG's `from_smiles` gives integer category codes meant for embeddings, which
AttentiveFP's first linear layer does not expect. Defaults are the paper's (200 hidden,
2 layers, 2 timesteps, dropout 0.2, lr 10^-2.5, weight decay 10^-5).
"""

from __future__ import annotations

from . import Hyperparameter, register_family
from .torch_base import TorchFamily, epoch_hyperparameters, featurize_error

ELEMENTS = ("B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "As", "Se", "Br", "Te", "I", "At")
HYBRIDIZATIONS = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
BOND_STEREO = ("STEREONONE", "STEREOANY", "STEREOZ", "STEREOE")
# element (15 + other), degree 0-5, formal charge, radical electrons, hybridisation (5 + other),
# aromatic, hydrogens 0-4, chiral centre, R, S
ATOM_DIM = 16 + 6 + 1 + 1 + 6 + 1 + 5 + 3
BOND_DIM = 4 + 1 + 1 + 4


def _one_hot(value, choices, other: bool) -> list[float]:
    hot = [float(value == c) for c in choices]
    return hot + [float(value not in choices)] if other else hot


def atom_features(atom, cip: dict[int, str]) -> list[float]:
    label = cip.get(atom.GetIdx())
    return (_one_hot(atom.GetSymbol(), ELEMENTS, True)
            + _one_hot(min(atom.GetDegree(), 5), range(6), False)
            + [float(atom.GetFormalCharge()), float(atom.GetNumRadicalElectrons())]
            + _one_hot(str(atom.GetHybridization()), HYBRIDIZATIONS, True)
            + [float(atom.GetIsAromatic())]
            + _one_hot(min(atom.GetTotalNumHs(), 4), range(5), False)
            + [float(label is not None), float(label == "R"), float(label == "S")])


def bond_features(bond) -> list[float]:
    return (_one_hot(str(bond.GetBondType()), BOND_TYPES, False)
            + [float(bond.GetIsConjugated()), float(bond.IsInRing())]
            + _one_hot(str(bond.GetStereo()), BOND_STEREO, False))


def mol_graph(smiles: str, row: int):
    """A PyG `Data` with both directions of every bond."""
    import torch
    from rdkit import Chem
    from torch_geometric.data import Data

    mol = Chem.MolFromSmiles(smiles) if smiles else None
    if mol is None or mol.GetNumAtoms() == 0:
        raise featurize_error(row, smiles)
    cip = dict(Chem.FindMolChiralCenters(mol, includeUnassigned=True, useLegacyImplementation=False))
    x = torch.tensor([atom_features(a, cip) for a in mol.GetAtoms()], dtype=torch.float32)
    pairs, feats = [], []
    for bond in mol.GetBonds():
        i, j, f = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx(), bond_features(bond)
        pairs += [(i, j), (j, i)]
        feats += [f, f]
    edge_index = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
    edge_attr = torch.tensor(feats, dtype=torch.float32).reshape(-1, BOND_DIM)
    return Data(x=x, edge_index=edge_index, edge_attr=edge_attr)


@register_family
class AttentiveFPFamily(TorchFamily):
    name = "attentivefp"
    label = "AttentiveFP (PyG)"
    method = ("Attentive FP graph attention network (Xiong et al., J. Med. Chem. 2020), "
              "torch_geometric.nn.models.AttentiveFP")
    featurizer_name = f"RDKit atom ({ATOM_DIM}) and bond ({BOND_DIM}) features after AttentiveFP's table 1"
    hyperparameters = (
        Hyperparameter("hidden_channels", "int", 200, 32, 512, log=True, help="Hidden size of atoms and molecule."),
        Hyperparameter("num_layers", "int", 2, 1, 6, help="Atom-level attention layers."),
        Hyperparameter("num_timesteps", "int", 2, 1, 6, help="Molecule-level attention steps."),
        Hyperparameter("dropout", "float", 0.2, 0.0, 0.5, help="Dropout."),
        Hyperparameter("lr", "float", 10 ** -2.5, 1e-5, 1e-1, log=True, help="Adam learning rate (constant)."),
        Hyperparameter("weight_decay", "float", 1e-5, 0.0, 1e-2, help="Adam weight decay (L2)."),
    ) + epoch_hyperparameters(max_epochs=100, patience=20, batch_size=128)

    def _build(self, n_tasks: int):
        from torch_geometric.nn.models import AttentiveFP

        h = self.hparams
        return AttentiveFP(in_channels=ATOM_DIM, hidden_channels=h["hidden_channels"], out_channels=n_tasks,
                           edge_dim=BOND_DIM, num_layers=h["num_layers"], num_timesteps=h["num_timesteps"],
                           dropout=h["dropout"])

    def _featurize(self, smiles: list[str]) -> list:
        return [mol_graph(s, i + 1) for i, s in enumerate(smiles)]

    def _collate(self, items: list):
        from torch_geometric.data import Batch

        return Batch.from_data_list(items)

    def _forward(self, model, batch):
        batch = batch.to(self.device)
        return model(batch.x, batch.edge_index, batch.edge_attr, batch.batch)

    def _lr(self):
        return self.hparams["lr"]

    def _weight_decay(self) -> float:
        return self.hparams["weight_decay"]

    @classmethod
    def library_versions(cls) -> dict:
        import torch_geometric

        return {**super().library_versions(), "torch_geometric": torch_geometric.__version__}
