"""A small httpx client for the coupon endpoint: devices (register, sign, post scores) and operators.

Device side::

    device = DeviceClient.register("http://127.0.0.1:8000", user_id="u0001")
    device.post_scores([device.score("dipn-1", p_realtime=0.31, p_longterm=0.52)])

Registering makes the device's Ed25519 key pair here and sends only the public key; the private
key (``secret``) stays with the caller. Each call to ``post_scores`` signs afresh (new timestamp
and nonce), so a retry of a failed post is simply another call with the same scores: the server
stores each (device, ts) once and counts the rest as duplicates. Requests are built and signed by
``dipn.wire``, as the device's own uplink builds them (``mobile_demo``, which imports nothing of
this package).
"""

from __future__ import annotations

import math

import httpx

from dipn import wire


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


class DeviceClient:
    def __init__(self, base_url: str, device_id: str, secret: str, *, http: httpx.Client | None = None,
                 timeout: float = 10.0) -> None:
        self.device_id, self.secret = device_id, secret
        self.http = http or httpx.Client(base_url=base_url, timeout=timeout)

    @classmethod
    def register(cls, base_url: str, user_id: str, *, platform: str | None = None, enroll_token: str | None = None,
                 http: httpx.Client | None = None, timeout: float = 10.0) -> DeviceClient:
        http = http or httpx.Client(base_url=base_url, timeout=timeout)
        path, body, headers, secret = wire.registration_request(user_id, platform, enroll_token)
        device = _answer(http.post(path, json=body, headers=headers))
        return cls(base_url, device["device_id"], secret, http=http)

    def score(self, model_version: str, p_realtime: float, p_longterm: float, ts: int | None = None) -> dict:
        if not (math.isfinite(p_realtime) and math.isfinite(p_longterm)):
            raise ValueError("scores must be finite")
        return {"device_id": self.device_id, "model_version": model_version, "p_realtime": float(p_realtime),
                "p_longterm": float(p_longterm), "ts": wire.now_ms() if ts is None else int(ts)}

    def post_scores(self, scores: list[dict]) -> dict:
        """Sign and post a batch; returns {"accepted", "duplicates"}; raises EndpointError on 4xx/5xx."""
        path, body, headers = wire.signed_score_request(self.device_id, self.secret, scores)
        return _answer(self.http.post(path, content=body, headers=headers))

    def my_coupon(self, campaign_id: int) -> dict:
        """This device's user's coupon in a campaign: {"granted", "coupon_id", "coupon_value", "redeemed"}."""
        path = f"/coupons/{campaign_id}"
        return _answer(self.http.get(path, headers=wire.signed_headers(self.device_id, self.secret, "GET", path, b"")))

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

    def list_campaigns(self) -> list[dict]:
        return _answer(self.http.get("/campaigns", headers=self.headers))["campaigns"]

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
                 "ts": wire.now_ms() if ts is None else ts}
        return _answer(self.http.post(f"/campaigns/{campaign_id}/orders", json=order, headers=self.headers))

    def metrics(self, campaign_id: int) -> dict:
        return _answer(self.http.get(f"/metrics/campaign/{campaign_id}", headers=self.headers))

    def report(self, campaign_id: int) -> dict:
        """R_c, I_gmv with intervals, decisions by reason, scores against the band, budget."""
        return _answer(self.http.get(f"/campaigns/{campaign_id}/report", headers=self.headers))

    def close(self) -> None:
        self.http.close()
