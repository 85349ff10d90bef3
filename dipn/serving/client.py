"""A small httpx client for the coupon endpoint: devices (register, sign, post scores) and operators.

Device side::

    device = DeviceClient.register("http://127.0.0.1:8000", user_id="u0001")
    device.post_scores([device.score("dipn-1", p_realtime=0.31, p_longterm=0.52)])

Registering makes the device's Ed25519 key pair here and sends only the public key; the private
key (``secret``) stays with the caller. Each call to ``post_scores`` signs afresh (new timestamp
and nonce), so a retry of a failed post is simply another call with the same scores: the server
stores each (device, ts) once and counts the rest as duplicates. An uplink with its own transport
can sign with ``signed_score_request``.
"""

from __future__ import annotations

import json
import math

import httpx

from dipn.serving import auth

SCORES_PATH = "/scores"
SCORE_FIELDS = ("device_id", "model_version", "p_realtime", "p_longterm", "ts")


class EndpointError(Exception):
    """The endpoint refused a request: HTTP status, machine-readable code and reason."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


def _answer(response: httpx.Response) -> dict:
    if response.is_success:
        return response.json()
    try:
        payload = response.json()
        code, detail = payload.get("error", "error"), payload.get("detail", response.text)
    except ValueError:
        code, detail = "error", response.text
    raise EndpointError(response.status_code, code, str(detail))


def encode_scores(scores: list[dict]) -> bytes:
    """The exact body of a score post: only the five score fields, NaN refused here already."""
    rows = []
    for index, score in enumerate(scores):
        extra = set(score) - set(SCORE_FIELDS)
        if extra:
            raise ValueError(f"scores[{index}] has fields a device may not send: {sorted(extra)}")
        rows.append({name: score[name] for name in SCORE_FIELDS})
    return json.dumps({"scores": rows}, allow_nan=False, separators=(",", ":")).encode()


def signed_score_request(device_id: str, secret: str, scores: list[dict]) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of a signed score post, for an uplink with its own HTTP transport."""
    body = encode_scores(scores)
    headers = auth.signed_headers(device_id, secret, "POST", SCORES_PATH, body)
    return SCORES_PATH, body, {"content-type": "application/json", **headers}


class DeviceClient:
    def __init__(self, base_url: str, device_id: str, secret: str, *, http: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        self.device_id, self.secret = device_id, secret
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    @classmethod
    def register(cls, base_url: str, user_id: str, *, platform: str | None = None, enroll_token: str | None = None,
                 http: httpx.Client | None = None, timeout: float = 10.0) -> DeviceClient:
        http = http or httpx.Client(base_url=base_url, timeout=timeout)
        headers = {"authorization": f"Bearer {enroll_token}"} if enroll_token else {}
        secret, public_key = auth.new_device_key()
        device = _answer(http.post("/devices", json={"user_id": user_id, "platform": platform, "public_key": public_key},
                                   headers=headers))  # fmt: skip
        return cls(base_url, device["device_id"], secret, http=http)

    def score(self, model_version: str, p_realtime: float, p_longterm: float, ts: int | None = None) -> dict:
        if not (math.isfinite(p_realtime) and math.isfinite(p_longterm)):
            raise ValueError("scores must be finite")
        return {"device_id": self.device_id, "model_version": model_version, "p_realtime": float(p_realtime),
                "p_longterm": float(p_longterm), "ts": auth.now_ms() if ts is None else int(ts)}

    def post_scores(self, scores: list[dict]) -> dict:
        """Sign and post a batch; returns {"accepted", "duplicates"}; raises EndpointError on 4xx/5xx."""
        path, body, headers = signed_score_request(self.device_id, self.secret, scores)
        return _answer(self.http.post(path, content=body, headers=headers))

    def my_coupon(self, campaign_id: int) -> dict:
        """This device's user's coupon in a campaign: {"granted", "coupon_id", "coupon_value", "redeemed"}."""
        path = f"/coupons/{campaign_id}"
        return _answer(self.http.get(path, headers=auth.signed_headers(self.device_id, self.secret, "GET", path, b"")))

    def close(self) -> None:
        self.http.close()


class OperatorClient:
    """Campaigns, decisions, orders and metrics (admin token when the server has one)."""

    def __init__(self, base_url: str, admin_token: str | None = None, *, http: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        headers = {"authorization": f"Bearer {admin_token}"} if admin_token else {}
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)
        self.headers = headers

    def create_campaign(self, **config) -> dict:  # noqa: ANN003 (CampaignConfig fields)
        return _answer(self.http.post("/campaigns", json=config, headers=self.headers))

    def get_campaign(self, campaign_id: int) -> dict:
        return _answer(self.http.get(f"/campaigns/{campaign_id}", headers=self.headers))

    def update_campaign(self, campaign_id: int, **changes) -> dict:  # noqa: ANN003
        return _answer(self.http.patch(f"/campaigns/{campaign_id}", json=changes, headers=self.headers))

    def decide(self, campaign_id: int, user_id: str) -> dict:
        return _answer(self.http.post(f"/campaigns/{campaign_id}/decisions", json={"user_id": user_id},
                                      headers=self.headers))

    def record_order(self, campaign_id: int, order_id: str, user_id: str, gmv: float, *, coupon_used: bool = False,
                     ts: int | None = None) -> dict:
        order = {"order_id": order_id, "user_id": user_id, "gmv": gmv, "coupon_used": coupon_used,
                 "ts": auth.now_ms() if ts is None else ts}
        return _answer(self.http.post(f"/campaigns/{campaign_id}/orders", json=order, headers=self.headers))

    def metrics(self, campaign_id: int) -> dict:
        return _answer(self.http.get(f"/metrics/campaign/{campaign_id}", headers=self.headers))

    def close(self) -> None:
        self.http.close()
