"""Requests carrying NUL characters are answered before any view runs.

PostgreSQL text and jsonb cannot hold NUL (0x00), so a NUL that reaches a query
is a database error, a 500. No URL, parameter or field of this site takes one:
in the path it names nothing (404); in a query parameter, a form field or a
JSON body it is a 400 naming the parameter. Django's form fields refuse NUL
already; this covers the values views read directly, the admin's and the API's.
"""

from __future__ import annotations

import json

from django.http import HttpResponseBadRequest, HttpResponseNotFound, JsonResponse

NUL = "\x00"
API_PREFIX = "/api/"
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _nul_in_querydict(data) -> str | None:
    for key, values in data.lists():
        if NUL in key or any(NUL in value for value in values if isinstance(value, str)):
            return key.replace(NUL, "\\x00")
    return None


def _nul_in_json(value, where: str = "") -> str | None:
    """The location of the first string holding NUL, as `params.sequences[0].id`."""
    if isinstance(value, str):
        return (where or "body") if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{where}.{key}" if where else str(key)
            if NUL in str(key):
                return here.replace(NUL, "\\x00")
            found = _nul_in_json(item, here)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_in_json(item, f"{where}[{index}]")
            if found:
                return found
    return None


def _refused_field(request, api: bool) -> str | None:
    field = _nul_in_querydict(request.GET)
    if field is None and request.method == "POST":
        if request.content_type in FORM_TYPES and not api:
            # Parsed here as CsrfViewMiddleware would. Not for the API, which
            # reads the body itself: a parsed multipart stream is gone.
            field = _nul_in_querydict(request.POST)
        elif request.content_type == "application/json" and request.body:
            try:
                data = json.loads(request.body)
            except ValueError:
                return None  # the view answers malformed JSON itself
            field = _nul_in_json(data)
    return field


class RefuseNulCharactersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        api = request.path_info.startswith(API_PREFIX)
        if NUL in request.path_info:
            message = "No such page: the address contains a NUL character."
            if api:
                return JsonResponse({"error": message, "field": None}, status=404)
            return HttpResponseNotFound(message, content_type="text/plain; charset=utf-8")
        field = _refused_field(request, api)
        if field is not None:
            message = f"“{field}” contains a NUL character (0x00), which no field accepts."
            if api:
                return JsonResponse({"error": message, "field": field}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)
