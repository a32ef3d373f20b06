from django.apps import AppConfig


class LlmConfig(AppConfig):
    # LLM-assisted analysis registers its job kinds here.
    name = "llm"
