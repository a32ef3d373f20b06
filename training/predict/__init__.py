"""Using a registered model: the training.predict job kind (kind.py), its
runner (jobs.py), result files (outputs.py), form, page and API. The science
is training.compute.scoring, which the `predict` command runs too."""
