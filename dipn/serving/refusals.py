"""The endpoint's refusals: the exception a route raises and the JSON answer it becomes.

Every refusal is a 4xx (or 503) with ``{"error": code, "detail": reason}``; ``ApiError`` is the
routes' own, ``auth.AuthError`` and ``store.StoreError`` carry the same three fields, and
``refusal`` answers any of them (with ``Retry-After`` on a 429). The routes, the middlewares and
the error handlers of ``app`` all answer through here, so the body has one shape.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

from dipn import wire
from dipn.serving import auth, store

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


REFUSALS = (ApiError, auth.AuthError, store.StoreError)


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def describe_validation_error(errors: list[dict]) -> str:
    """'scores.3.p_realtime: Input should be less than or equal to 1' for each error."""
    parts = []
    for error in errors[:10]:
        location = ".".join(str(part) for part in error["loc"] if part != "body")
        parts.append(f"{location or 'body'}: {error['msg']}")
    return "; ".join(parts)


def refusal(request: Request, exc: ApiError | auth.AuthError | store.StoreError) -> JSONResponse:
    """The answer to a refused request: its status and error body (``Retry-After`` with a 429)."""
    response = error_response(exc.status, exc.code, exc.detail)
    if exc.status == 429:
        response.headers["retry-after"] = str(request.app.state.rate_limit.retry_after_s(wire.now_ms()))
    return response
