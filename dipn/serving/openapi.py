"""The OpenAPI document as a client generator needs it, and the pages that show it, offline.

FastAPI derives paths and bodies from the routes; this module adds what it cannot know:
- security schemes: ``operatorToken`` (Bearer, the operator routes: Swagger's "Authorize" sends
  it), ``enrollmentToken`` (Bearer, ``POST /devices``) and the four headers of a signed device
  request (``deviceId``, ``deviceTimestamp``, ``deviceNonce``, ``deviceSignature``: all four
  together; the signature's formula is in their description, as OpenAPI has no word for it);
- every error answer with the body it really has, ``ErrorBody`` = ``{"error", "detail"}``:
  FastAPI's ``HTTPValidationError`` is replaced everywhere, and the answers any route can get
  from the server's bounds (408, 413, 414, 431) are declared on each;
- ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) with their scripts and styles served by the
  endpoint itself, from the files the ``fastapi-offline`` package ships (MIT; Swagger UI is
  Apache-2.0, ReDoc MIT): the pages work with no internet access and load nothing from a CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles

from dipn import wire
from dipn.serving.schemas import ErrorBody

DESCRIPTION = """The coupon endpoint of dipn (docs/serving.md): devices register a public key and post signed
DIPN scores; operators run A/B coupon campaigns and read R_c and I_gmv per bucket.

Every refusal is a 4xx (503 when storage is down) with the body `{"error": "<code>", "detail": "<reason>"}`.
Operator routes need `Authorization: Bearer <operator token>`. Device routes are signed with the device's
Ed25519 key (docs/serving.md, "Signing")."""

ASSETS_PATH = "/docs/assets"
OPERATOR_SCHEME = "operatorToken"
ENROLLMENT_SCHEME = "enrollmentToken"
SIGNED_SCHEMES = {
    "deviceId": (wire.HEADER_DEVICE, "the registered device id (32 hex digits)"),
    "deviceTimestamp": (wire.HEADER_TIMESTAMP, "ms since the epoch, within 300 s of the server clock"),
    "deviceNonce": (wire.HEADER_NONCE, "16-64 characters of [A-Za-z0-9_-], fresh per request"),
    "deviceSignature": (wire.HEADER_SIGNATURE, "hex(Ed25519-sign(device key, 'DIPN-ED25519\\n' METHOD '\\n' TARGET "
                        "'\\n' TIMESTAMP '\\n' NONCE '\\n' hex(SHA-256(body)))), 128 hex digits; TARGET is the "
                        "path with '?query' when there is one"),
}
# The security requirement of a signed route: all four headers together.
SIGNED_SECURITY = [{name: [] for name in SIGNED_SCHEMES}]

# Security dependencies: they check nothing themselves (auth.check_bearer does, with the
# endpoint's error body) but put the scheme into the document, and Swagger's "Authorize" to work.
operator_token = HTTPBearer(scheme_name=OPERATOR_SCHEME, auto_error=False,
                            description="the operator (admin) token the server was started with")
enrollment_token = HTTPBearer(scheme_name=ENROLLMENT_SCHEME, auto_error=False,
                              description="the enrollment token devices need to register")

# Answers any route can get from the server's bounds, whatever the route does.
BOUNDS = {
    408: "`request_timeout`: the request line and headers, or the body, did not arrive in time",
    413: "`body_too_large`: a body over the limit (64 KiB by default), declared or streamed",
    414: "`uri_too_long`: a request line over 16 KiB",
    431: "`headers_too_large`: more than 64 headers, or request line and headers over 16 KiB",
}
OPERATOR_REFUSALS = {401: "`missing_token`: no `Authorization: Bearer` header",
                     403: "`bad_token`: not the operator token"}  # fmt: skip
SIGNED_REFUSALS = {
    401: "`missing_signature`, `bad_signature` (body, method, path and query, timestamp or nonce changed; "
         "another key), `stale_timestamp`, `bad_nonce`, `unknown_device`",
    409: "`replay`: the nonce was already used by this device",
    429: "`rate_limited`: over the device's signed requests per minute; `Retry-After` says when to retry",
}


def errors(described: dict[int, str]) -> dict[int | str, dict]:
    """The ``responses`` of a route: each status with the endpoint's error body and the codes it may carry."""
    responses: dict[int | str, dict] = {}
    for status, description in described.items():
        responses[status] = {"model": ErrorBody, "description": description}
        if status == 429:
            responses[status]["headers"] = {"Retry-After": {"description": "seconds until the rate window ends",
                                                            "schema": {"type": "integer"}}}  # fmt: skip
    return responses


def install(app: FastAPI) -> None:
    """The completed document at /openapi.json, Swagger UI at /docs, ReDoc at /redoc, assets local."""
    import fastapi_offline

    app.openapi = lambda: _document(app)  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=Path(fastapi_offline.__file__).parent / "static"), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title}: Swagger UI",
                                   swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS_PATH}/favicon.png", oauth2_redirect_url=None)

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title}: ReDoc",
                              redoc_js_url=f"{ASSETS_PATH}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS_PATH}/favicon.png", with_google_fonts=False)


def _document(app: FastAPI) -> dict:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = document.setdefault("components", {})
    schemes = components.setdefault("securitySchemes", {})
    for name, (header, description) in SIGNED_SCHEMES.items():
        schemes[name] = {"type": "apiKey", "in": "header", "name": header, "description": description}
    for path, operation in ((path, op) for path, item in document["paths"].items() for op in item.values()):
        responses = operation.setdefault("responses", {})
        security = {name for requirement in operation.get("security", []) for name in requirement}
        added = dict(BOUNDS)
        if OPERATOR_SCHEME in security:
            added |= OPERATOR_REFUSALS
        if security & set(SIGNED_SCHEMES):
            added |= SIGNED_REFUSALS
        if "{campaign_id}" in path:
            added[404] = "`unknown_campaign`: no campaign has this id"
        if "422" in responses and "ErrorBody" not in str(responses["422"]):
            responses["422"] = _error_response("`invalid_request`: a field, parameter or body that does not parse")
        for status, description in added.items():
            responses.setdefault(str(status), _error_response(description))
    schemas = components.get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    app.openapi_schema = document
    return document


def _error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
