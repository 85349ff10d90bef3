"""``dipn shop``: the live page of the TypeScript port, a small mock shop that scores its visitor in
the browser (mobile_demo/web) and posts the scores, signed, to ``dipn serve``.

The server is deliberately small: it serves the compiled page, onnxruntime-web's WebAssembly files
(never a CDN), the bundle's files and a config, and forwards the page's two device requests
(``POST /devices``, ``POST /scores``) byte for byte to the endpoint, so the page talks to its own
origin only (the endpoint has no CORS) and its Content-Security-Policy can forbid every other
host. The path a score post is signed over is the endpoint's path: the forward keeps it.

The shop plays the app backend that vouches for its visitor (as the replay does for its phones):
it adds the endpoint's enrollment token (the file named by ``--enroll-token-file`` or
``DIPN_ENROLL_TOKEN_FILE``, else env ``DIPN_ENROLL_TOKEN``: ``dipn.serving.config.token_from``, the
rule of ``dipn serve``) to the registration it forwards, so the token never reaches the page nor
the command line.
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dipn.commands.tokens import refuse_on_argv

WEB = Path(__file__).resolve().parents[2] / "mobile_demo" / "web"
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
FORWARDED = ("/devices", "/scores")
FORWARDED_HEADERS = ("content-type", "authorization", "x-dipn-device", "x-dipn-timestamp", "x-dipn-nonce",
                     "x-dipn-signature")  # fmt: skip
CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'; style-src 'self'; "
       "img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")  # fmt: skip
DEFAULT_HISTORY = {"collect_7d": 1, "collect_365d": 12, "cart_7d": 1, "cart_365d": 9, "purchase_7d": 0,
                   "purchase_365d": 4}  # fmt: skip
DEFAULT_PROFILE = {"age_level": 3, "gender": 1, "buyer_star": 5, "tm_level": 2, "vip_level": 1, "phone_price_level": 5}
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "shop",
        help="serve a mock shop page that scores its visitor in the browser (TypeScript port, onnxruntime-web)",
        description="Serve a small mock shop (product list, product pages, cart, checkout) on loopback. The page "
        "checks the bundle's signature with --public-key, self-tests it on its golden cases, encodes the visitor's "
        "scrolls, taps and page visits with the TypeScript port of the encoder, scores them with onnxruntime-web "
        "(WebAssembly, one thread, files served here), shows p_realtime and p_longterm live, and posts only scores, "
        "signed, to the dipn serve endpoint (forwarded through this server). Build the page first: make setup.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="a bundle from dipn convert with ONNX artifacts")
    p.add_argument("--public-key", type=Path, required=True, help="the bundle signer's public key (dipn keygen)")
    p.add_argument("--endpoint", required=True, help="base URL of dipn serve, e.g. http://127.0.0.1:8000")
    p.add_argument("--precision", choices=["fp32", "int8"], help="artifact precision (default: the bundle's default)")
    p.add_argument("--enroll-token-file", metavar="PATH", help="file whose first line is the endpoint's enrollment "
                   "token, added to the visitor's registration by this server (default: env DIPN_ENROLL_TOKEN_FILE, "
                   "or the token itself in DIPN_ENROLL_TOKEN; none: the endpoint must have open enrollment)")
    refuse_on_argv(p, "--enroll-token")
    p.add_argument("--user-id", default="shop-visitor", help="the visitor's user id (default shop-visitor)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from dipn.bundle.trust import load_public_key, load_trusted_bundle
    from dipn.errors import DipnValidationError
    from dipn.serving.config import token_from

    try:
        enroll_token = token_from(args.enroll_token_file, "DIPN_ENROLL_TOKEN", "--enroll-token-file")
    except ValueError as exc:
        raise DipnValidationError(str(exc)) from None
    if not 0 <= args.port < 65536:
        raise DipnValidationError(f"--port must lie in 0..65535, got {args.port}")
    bundle, signer = load_trusted_bundle(args.bundle, args.public_key)
    bundle.artifact("onnx", args.precision)  # refuses a bundle without the ONNX artifact asked for
    app = WEB / "dist" / "src" / "shop" / "app.js"
    ort = WEB / "node_modules" / "onnxruntime-web" / "dist"
    if not app.is_file() or not all((ort / name).is_file() for name in ORT_FILES):
        raise DipnValidationError(f"the page is not built in {WEB}: run make setup (npm ci and tsc there)")
    endpoint = args.endpoint.rstrip("/")
    if urlsplit(endpoint).scheme not in ("http", "https") or urlsplit(endpoint).path not in ("",):
        raise DipnValidationError(f"--endpoint must be the base URL of dipn serve (http://HOST:PORT), got {args.endpoint!r}")
    try:
        with urllib.request.urlopen(f"{endpoint}/healthz", timeout=5) as response:
            response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise DipnValidationError(f"the endpoint {endpoint} does not answer /healthz ({exc}); start dipn serve") from None
    config = {
        "publicKeyPem": load_public_key(args.public_key).public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
        "precision": args.precision or bundle.manifest["default_precision"],
        "endpoint": "/",
        "bundle": "/bundle/",
        "ortModule": "/vendor/ort/ort.wasm.min.mjs",
        "ortWasm": "/vendor/ort/",
        "user": {"user_id": args.user_id, "history": DEFAULT_HISTORY, "profile": DEFAULT_PROFILE},
    }
    files = {"/config.json": json.dumps(config).encode()}
    routes = {"/": WEB / "static" / "index.html", "/static/shop.css": WEB / "static" / "shop.css"}
    routes |= {f"/vendor/ort/{name}": ort / name for name in ORT_FILES}
    routes |= {f"/bundle/{name}": bundle.root / name for name in [*bundle.manifest["files"], "manifest.json", "manifest.sig"]}
    routes |= {f"/app/{p.relative_to(WEB / 'dist').as_posix()}": p for p in (WEB / "dist" / "src").rglob("*.js")}
    try:
        server = ThreadingHTTPServer((args.host, args.port), _handler(routes, files, endpoint, enroll_token))
    except OSError as exc:
        raise DipnValidationError(f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc})") from None
    host, port = server.server_address[:2]
    print(f"dipn shop: http://{host}:{port}/ ({bundle.manifest['model_version']} {config['precision']}, signed by "
          f"{signer}; scores go to {endpoint})", flush=True)  # fmt: skip
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _handler(routes: dict[str, Path], files: dict[str, bytes], endpoint: str,
             enroll_token: str | None) -> type[BaseHTTPRequestHandler]:  # fmt: skip
    lock = threading.Lock()
    cache: dict[str, bytes] = {}

    def read(path: Path) -> bytes:
        with lock:
            if str(path) not in cache:
                cache[str(path)] = path.read_bytes()
            return cache[str(path)]

    class Handler(BaseHTTPRequestHandler):
        server_version = "dipn-shop"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.send_header("content-security-policy", CSP)
            self.send_header("cache-control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            if path in files:
                return self._send(200, files[path], "application/json")
            target = routes.get(path)
            if target is None or not target.is_file():
                return self._send(404, b'{"error":"not_found"}', "application/json")
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            return self._send(200, read(target), kind)

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path not in FORWARDED:
                return self._send(404, b'{"error":"not_found"}', "application/json")
            body = self.rfile.read(min(int(self.headers.get("content-length") or 0), 1 << 20))
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            if enroll_token is not None and urlsplit(self.path).path == "/devices":
                headers["authorization"] = f"Bearer {enroll_token}"  # the backend vouches for its visitor
            request = urllib.request.Request(endpoint + self.path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, answer, kind = response.status, response.read(), response.headers.get("content-type")
            except urllib.error.HTTPError as exc:
                status, answer, kind = exc.code, exc.read(), exc.headers.get("content-type")
            except (urllib.error.URLError, OSError) as exc:
                status, answer, kind = 502, json.dumps({"error": "endpoint_unreachable", "detail": str(exc)}).encode(), None
            return self._send(status, answer, kind or "application/json")

    return Handler
