"""D-MPNN: Chemprop 2.2.4's directed bond message passing network, trained by our epoch loop.

Chemprop's modules (featuriser, BondMessagePassing, aggregation, FFN predictor, MPNN) are used
as they are; Lightning's Trainer is not: `loop.fit_torch` drives training, so checkpoints,
resume and cancellation work the same for every torch family. The predictor gets no output
transform: targets are standardised by `TorchFamily` (one scaler, stored in config.json) and
the raw FFN outputs (`predictor.train_step`) are unscaled / passed through a sigmoid there.
Defaults are chemprop's `chemprop train` defaults.
"""

from __future__ import annotations

from ..table import CLASSIFICATION
from . import Hyperparameter, register_family
from .torch_base import TorchFamily, epoch_hyperparameters, featurize_error

AGGREGATIONS = ("mean", "sum", "norm")


@register_family
class DMPNN(TorchFamily):
    name = "dmpnn"
    label = "D-MPNN (Chemprop)"
    method = ("Directed message-passing neural network (Yang et al., J. Chem. Inf. Model. 2019), "
              "chemprop 2.2.4 modules")
    featurizer_name = "chemprop SimpleMoleculeMolGraphFeaturizer (v2 multi-hot atom and bond features)"
    hyperparameters = (
        Hyperparameter("depth", "int", 3, 2, 6, help="Message-passing steps."),
        Hyperparameter("message_hidden_dim", "int", 300, 100, 2400, log=True, help="Hidden size of the messages."),
        Hyperparameter("ffn_hidden_dim", "int", 300, 100, 2400, log=True, help="Hidden size of the feed-forward head."),
        Hyperparameter("ffn_num_layers", "int", 1, 1, 3, help="Hidden layers of the feed-forward head."),
        Hyperparameter("dropout", "float", 0.0, 0.0, 0.4, help="Dropout in message passing and the head."),
        Hyperparameter("aggregation", "choice", "norm", choices=AGGREGATIONS,
                       help="Atom-to-molecule pooling: mean, sum, or sum / 100 (chemprop's norm)."),
        Hyperparameter("batch_norm", "bool", False, help="Batch normalisation after pooling."),
        Hyperparameter("init_lr", "float", 1e-4, 1e-6, 1e-2, log=True, help="Learning rate at the start of warm-up."),
        Hyperparameter("max_lr", "float", 1e-3, 1e-5, 1e-1, log=True, help="Learning rate at the end of warm-up."),
        Hyperparameter("final_lr", "float", 1e-4, 1e-6, 1e-2, log=True, help="Learning rate at the last epoch."),
        Hyperparameter("warmup_epochs", "int", 2, 0, 20, searchable=False,
                       help="Epochs of linear warm-up from init_lr to max_lr, then exponential decay to final_lr."),
    ) + epoch_hyperparameters(max_epochs=50, patience=10, batch_size=64)

    def _build(self, n_tasks: int):
        from chemprop import models, nn

        h = self.hparams
        featurizer = self._featurizer()
        mp = nn.BondMessagePassing(d_v=featurizer.atom_fdim, d_e=featurizer.bond_fdim,
                                   d_h=h["message_hidden_dim"], depth=h["depth"], dropout=h["dropout"])
        agg = {"mean": nn.MeanAggregation, "sum": nn.SumAggregation, "norm": nn.NormAggregation}[h["aggregation"]]()
        # classification-only models use chemprop's binary head; any regression target takes the
        # plain regression head (its outputs are used raw either way, see the module docstring)
        head = nn.BinaryClassificationFFN if set(self.task_types) == {CLASSIFICATION} else nn.RegressionFFN
        predictor = head(n_tasks=n_tasks, input_dim=mp.output_dim, hidden_dim=h["ffn_hidden_dim"],
                         n_layers=h["ffn_num_layers"], dropout=h["dropout"])
        return models.MPNN(mp, agg, predictor, batch_norm=h["batch_norm"])

    def _featurizer(self):
        from chemprop.featurizers import SimpleMoleculeMolGraphFeaturizer

        if not hasattr(self, "_feat"):
            self._feat = SimpleMoleculeMolGraphFeaturizer()
        return self._feat

    def _featurize(self, smiles: list[str]) -> list:
        from chemprop.utils import make_mol

        featurizer = self._featurizer()
        graphs = []
        for i, smi in enumerate(smiles):
            try:
                mol = make_mol(smi)
            except Exception:
                mol = None
            if mol is None:
                raise featurize_error(i + 1, smi)
            graphs.append(featurizer(mol))
        return graphs

    def _collate(self, items: list):
        from chemprop.data import BatchMolGraph

        return BatchMolGraph(items)

    def _forward(self, model, batch):
        batch.to(self.device)
        return model.predictor.train_step(model.fingerprint(batch))

    def _lr(self):
        from ..loop import NoamSchedule

        h = self.hparams
        return NoamSchedule(h["warmup_epochs"], h["init_lr"], h["max_lr"], h["final_lr"])

    @classmethod
    def library_versions(cls) -> dict:
        import chemprop

        return {**super().library_versions(), "chemprop": chemprop.__version__}
