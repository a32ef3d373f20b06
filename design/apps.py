from django.apps import AppConfig


class DesignConfig(AppConfig):
    # Drug design campaigns (issue 5) register their job kinds here.
    name = "design"
