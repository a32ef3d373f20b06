"""Drug design campaigns: Django-free compute.

properties (property predictors and their registry), molecules (SMILES/CSV/SDF
reading with row-level errors), generate (graph GA, BRICS), sites and docking
(AutoDock Vina with Meeko), depict (SVG). Import the submodules directly; this
package imports nothing so Django can load the app without RDKit.
"""
