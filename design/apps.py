from django.apps import AppConfig


class DesignConfig(AppConfig):
    name = "design"
    verbose_name = "Drug design"

    def ready(self) -> None:
        from workers import kinds

        from . import params

        kinds.register(kinds.JobKind(
            name="design.properties", label="Molecular property prediction", queue="cpu",
            runner="design.jobs:run_properties", clean_params=params.clean_properties_params,
            result_template="design/result_properties.html",
            soft_time_limit=3600, time_limit=3700,
            description="Drug-likeness, solubility, bioavailability and structural alerts, each by a "
                        "named method, for a SMILES/CSV or SDF list; invalid rows are reported per row.",
            submit_url_name="design:properties_new", summarize_params=params.summarize_properties,
        ))
        kinds.register(kinds.JobKind(
            name="design.docking", label="Docking (AutoDock Vina)", queue="cpu",
            runner="design.jobs:run_docking", clean_params=params.clean_docking_params,
            check_access=params.check_access,
            result_template="design/result_docking.html",
            soft_time_limit=4 * 3600, time_limit=4 * 3600 + 300,
            description="AutoDock Vina docking with Meeko-prepared receptor and ligands into a "
                        "binding site; poses as SDF, best score in kcal/mol.",
            submit_url_name="design:docking_new", summarize_params=params.summarize_docking,
        ))
        # Docking inside the GA is capped by params.MAX_GA_DOCKINGS; the time
        # limit covers that cap at the highest allowed exhaustiveness.
        kinds.register(kinds.JobKind(
            name="design.campaign_run", label="Design campaign run", queue="cpu",
            runner="design.jobs:run_campaign", clean_params=params.clean_campaign_params,
            check_access=params.check_access,
            result_template="design/result_campaign.html",
            soft_time_limit=10 * 3600, time_limit=10 * 3600 + 600,
            description="Genetic algorithm with BRICS seeding over molecular graphs, weighted or "
                        "Pareto objectives over properties and (optionally) the Vina score.",
            submit_url_name="design:index", summarize_params=params.summarize_campaign,
        ))
