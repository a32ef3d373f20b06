"""Put a model folder written by `train_model` into the registry:

    python manage.py import_model DIR --name NAME --owner USERNAME [--lab SLUG] [--shared]

The folder is loaded first (so a broken or foreign folder is refused before
anything is stored), packed as the bundle a portal run would register, and
becomes the next version of NAME for that owner, named with its method and test
metric like every registered model.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Register a model folder (from train_model) as a new version of a named model."

    def add_arguments(self, parser):
        parser.add_argument("model_dir", type=Path, metavar="DIR")
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner", required=True, metavar="USERNAME")
        parser.add_argument("--lab", default=None, metavar="SLUG", help="a lab of the owner's (default: none)")
        parser.add_argument("--shared", action="store_true", help="share it with --lab's members")

    def handle(self, *args, **opts):
        from accounts.models import Lab
        from training.compute.bundle import load_model, pack
        from training.registry import RegistrationError, register_bundle

        name = opts["name"].strip()
        if not name or len(name) > 200:
            raise CommandError("--name: give a name of 1 to 200 characters.")
        owner = get_user_model().objects.filter(username=opts["owner"]).first()
        if owner is None:
            raise CommandError(f"--owner: no user {opts['owner']!r}.")
        lab = None
        if opts["lab"]:
            lab = Lab.objects.filter(slug=opts["lab"], members=owner).first()
            if lab is None:
                raise CommandError(f"--lab: {opts['owner']} is not a member of a lab {opts['lab']!r}.")
        elif opts["shared"]:
            raise CommandError("--shared needs --lab: the lab to share it with.")
        try:
            model = load_model(opts["model_dir"])
            bundle = pack(opts["model_dir"])
        except (OSError, ValueError, KeyError) as exc:
            raise CommandError(f"{opts['model_dir']}: not a model folder ({exc})") from None
        card = dict(model.card)
        card["imported_from"] = str(opts["model_dir"].resolve())
        try:
            version = register_bundle(owner, name, bundle, card, model.describe(), lab=lab, shared=opts["shared"])
        except RegistrationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Registered {version.display_name} (id {version.pk}) for {owner.username}"
                          + (f", shared with {lab}" if opts["shared"] else ""))
