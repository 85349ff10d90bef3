"""Coupon-allocation endpoint (paper section 6.3; docs/serving.md).

Devices register, then post only ``{device_id, model_version, p_realtime, p_longterm, ts}``,
signed with the device's own Ed25519 key. Users fall into A/B buckets by a stable hash; a
campaign's policy decides who gets a coupon; orders and GMV are recorded and R_c (eq. 7) and
I_gmv (eq. 8) reported per bucket.

One job per module: ``config`` (typed campaign and server settings), ``tables`` (SQL tables),
``migrations`` (versioned schema), ``db`` (engines and transactions), ``auth`` (device signatures),
``buckets`` (stable-hash A/B split), ``policy`` (threshold and budgeted policies), ``metrics`` (eq.
7-8), ``band`` (bands fitted to reference scores), ``budget`` (the paced knapsack allocator),
``intervals`` (user-bootstrap intervals), ``report`` (the campaign report), ``dashboard`` (its HTML
and SVG), ``ingest`` (group-committed score writes), ``ratelimit`` (per-device rate limit,
single-use nonces), ``store`` (the other reads and writes), ``schemas`` (request and response
bodies), ``routes`` (one APIRouter per audience, auth as dependencies), ``refusals`` (the error
body), ``app`` (the app: routers, middlewares, lifespan), ``openapi`` (the document's security
schemes and error bodies, Swagger UI and ReDoc served locally), ``protocol`` (the HTTP connection,
request heads bounded in size and time), ``server`` (uvicorn workers under a supervisor), ``client``
(httpx helper for devices, operators and tests).
"""
