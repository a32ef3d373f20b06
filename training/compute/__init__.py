"""Training's science, with no Django: a worker imports it only when a job needs it,
and the `train_model` / `predict` commands use the very same code.

    table.py      the contract every module shares: a validated dataset (`Table`)
    datasets.py   CSV/SDF -> Table: row validation, canonical SMILES, duplicates, task inference, stats
    splits.py     random, scaffold (balanced Bemis-Murcko), stratified, by column, k-fold
    builtin.py    the catalogue of the public datasets in training/data/ (columns, tasks, citation, split)
    metrics.py    RMSE, MAE, R², Spearman; ROC-AUC, PR-AUC, accuracy, MCC; masked, per task and mean
    families/     the model registry: one module per family (fingerprint_rf, dmpnn, attentivefp;
                  torch_base.py is what the two torch families share)
    loop.py       the epoch loop of the torch families: early stopping, best weights, a checkpoint per epoch, resume
    pipeline.py   one training run: split -> members (ensemble) -> test metrics -> conformal interval
    bundle.py     a trained model on disk (safetensors / skops + JSON) and its predictions with uncertainty
                  and applicability domain
    scoring.py    molecules from a CSV/SDF/SMILES list -> predictions with row errors (predict job and command)
    tracking.py   optional MLflow / Weights & Biases logging
"""
