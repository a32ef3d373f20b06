"""The JSON API at /api/v1/, with its OpenAPI schema at /api/v1/openapi.json.

Every error answers {"error": "...", "field": "..."} so a client can point at
the offending input; feature apps add their routers here.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from accounts.models import ApiToken
from workers.errors import ParamsError
from workers.quotas import QuotaExceeded


class BearerToken(HttpBearer):
    def authenticate(self, request, token):
        user = ApiToken.authenticate(token)
        if user is not None:
            request.user = user
        return user


class CsrfRefused(Exception):
    """A request signed in by the session cookie without a valid CSRF token."""


class PortalSession(APIKeyCookie):
    """The portal's own pages calling the API with their session cookie, checked
    for CSRF as Django's forms are. Without a signed-in session this answers
    nothing, so the request ends in the 401 rather than in a CSRF refusal
    (ninja's session auth checks CSRF first, for anyone)."""

    param_name = settings.SESSION_COOKIE_NAME

    def __call__(self, request):
        if not request.user.is_authenticated:
            return None
        if not getattr(request, "_ninja_csrf_exempt", False) and check_csrf(request):
            raise CsrfRefused()
        return request.user

    def authenticate(self, request, key):  # pragma: no cover - __call__ answers
        return request.user if request.user.is_authenticated else None


api = NinjaAPI(
    title="biofm API", version="1", urls_namespace="api",
    auth=[BearerToken(), PortalSession()],
    description="Submit and follow jobs. Authenticate with `Authorization: Bearer <token>` "
                "(create tokens on your profile page).",
)


def _field_of(error: dict) -> str:
    loc = [str(part) for part in error.get("loc", []) if part not in ("body", "payload", "query", "path")]
    if len(loc) > 1 and loc[0] in ("file", "form"):
        # A multipart parameter's location starts with its source: ("form", "name").
        loc = loc[1:]
    return ".".join(loc) or "body"


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    first = exc.errors[0] if exc.errors else {}
    field = _field_of(first)
    return api.create_response(request, {
        "error": f"{field}: {first.get('msg', 'invalid value')}",
        "field": field,
        "errors": [{"field": _field_of(e), "message": e.get("msg", "")} for e in exc.errors],
    }, status=400)


@api.exception_handler(ParamsError)
def on_params_error(request, exc: ParamsError):
    return api.create_response(request, {"error": exc.message, "field": exc.field}, status=400)


@api.exception_handler(QuotaExceeded)
def on_quota(request, exc: QuotaExceeded):
    return api.create_response(request, {"error": str(exc), "field": "quota"}, status=403)


@api.exception_handler(Http404)
def on_not_found(request, exc):
    return api.create_response(request, {"error": str(exc) or "Not found.", "field": None}, status=404)


@api.exception_handler(AuthenticationError)
def on_auth(request, exc):
    return api.create_response(
        request, {"error": "Authentication required: send Authorization: Bearer <token>.",
                  "field": "Authorization"}, status=401)


@api.exception_handler(CsrfRefused)
def on_csrf_refused(request, exc):
    return api.create_response(request, {
        "error": "CSRF check failed: a request signed in by the session cookie must send the csrftoken "
                 "cookie's value in the X-CSRFToken header. Scripts use Authorization: Bearer <token>.",
        "field": "X-CSRFToken"}, status=403)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return api.create_response(request, {"error": str(exc), "field": None}, status=exc.status_code)


def _register_routers() -> None:
    from workers.api import router as jobs_router

    api.add_router("/", jobs_router)
    from analysis.protparam.api import router as analysis_router

    api.add_router("/analysis", analysis_router)
    from analysis.esm.api import router as esm_router

    api.add_router("/esm", esm_router)
    from design.api import router as design_router

    api.add_router("/design", design_router)
    from analysis.atomica.api import router as atomica_router

    api.add_router("/atomica", atomica_router)
    from training.api import router as training_router

    api.add_router("/training", training_router)


_register_routers()
