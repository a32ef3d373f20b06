from django.core.management.base import BaseCommand

from training.builtins import load_builtin_datasets


class Command(BaseCommand):
    help = ("Create the built-in public datasets (ESOL, FreeSolv, Lipophilicity, BBBP, Tox21) as datasets "
            "everyone sees; those already there with the same content are left as they are.")

    def handle(self, *args, **options):
        for name, stored in load_builtin_datasets():
            d = stored.dataset
            state = "created" if stored.created else "unchanged"
            self.stdout.write(f"{name} v{d.version}: {state}; {d.n_rows} molecules kept of {d.n_source_rows} rows, "
                              f"{len(d.row_errors)} row errors")
