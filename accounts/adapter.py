"""allauth's account adapter, giving its emails the portal's name.

Without django.contrib.sites allauth names the site after the request's host,
so its emails greeted people with "Hello from 127.0.0.1:8000!".
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.conf import settings


@dataclass(frozen=True)
class PortalSite:
    """What allauth's templates read from a Site: its name and domain."""

    name: str
    domain: str


def portal_site(request=None) -> PortalSite:
    domain = request.get_host() if request is not None else urlparse(settings.SITE_URL).netloc
    return PortalSite(name=settings.BIOFM_SITE_NAME, domain=domain)


class AccountAdapter(DefaultAccountAdapter):
    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # The parent fills "current_site" from the request host, then lets the
        # given context override it.
        context = {"current_site": portal_site(allauth_context.request), **context}
        super().send_mail(template_prefix, email, context)
