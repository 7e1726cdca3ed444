"""`GET /configuration-files/{sdkKey}/config_v6.json`: ConfigCat's download protocol.

Configs are served from memory and reloaded when the state store changes (the server
checks about once a second, so a change reaches an SDK at its next poll). Each answer
carries an ETag; `If-None-Match` (server SDKs) or the `ccetag` query parameter (browser
SDKs, which avoid a CORS preflight) equal to it gives 304. `p.u` is this server's own
base URL and `p.r` 0, so an SDK never redirects elsewhere.
"""

import hashlib
import json
import time
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from trackway.flags import environments as envs
from trackway.flags.asgi import JSON, Headers, answer, error
from trackway.flags.evaluate import Evaluator
from trackway.storage.base import StateStore

_SUFFIX = "/config_v6.json"
# An unknown key reloads at once, as an unknown write key does (ingest/sources.py), but at
# most this often, so a flood of wrong keys cannot turn into a flood of reads.
_MISS_RELOAD_INTERVAL_S = 1.0


class FlagCache:
    """SDK key → stored environment, its prepared evaluator, and the served bytes per
    (key, base URL)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._envs: dict[str, envs.Environment] = {}
        self._bodies: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._versions: dict[str, str] = {}
        self._evaluators: dict[str, Evaluator] = {}
        self._last_miss_reload = 0.0
        self.reload()

    def reload(self) -> None:
        self._envs = {env.sdk_key: env for env in envs.environments(self._store)}
        self._bodies = {}
        self._versions = {}
        self._evaluators = {}

    def environment(self, sdk_key: str) -> envs.Environment | None:
        """The environment served at `sdk_key`; None: unknown (after one fresh look)."""
        env = self._envs.get(sdk_key)
        if env is None:
            now = time.monotonic()
            if now - self._last_miss_reload < _MISS_RELOAD_INTERVAL_S:
                return None
            self._last_miss_reload = now
            self.reload()
            env = self._envs.get(sdk_key)
        return env

    def version(self, env: envs.Environment) -> str:
        """A digest of the environment's config: it changes whenever the config does."""
        known = self._versions.get(env.sdk_key)
        if known is None:
            raw = json.dumps(env.config, sort_keys=True, ensure_ascii=False).encode()
            known = self._versions[env.sdk_key] = hashlib.sha256(raw).hexdigest()[:32]
        return known

    def evaluator(self, env: envs.Environment) -> Evaluator:
        """The environment's config prepared for evaluation (until the next reload)."""
        known = self._evaluators.get(env.sdk_key)
        if known is None:
            known = self._evaluators[env.sdk_key] = Evaluator(env.config)
        return known

    def body(self, sdk_key: str, base_url: str) -> tuple[bytes, str] | None:
        """(JSON bytes, ETag) of the key's config as served from `base_url`; None: unknown."""
        cached = self._bodies.get((sdk_key, base_url))
        if cached is not None:
            return cached
        env = self.environment(sdk_key)
        if env is None:
            return None
        config = env.config
        prefs = dict(config.get("p") or {})
        prefs.update(u=base_url, r=0)
        data = json.dumps({**config, "p": prefs}, ensure_ascii=False, separators=(",", ":"))
        raw = data.encode()
        served = (raw, f'"{hashlib.sha256(raw).hexdigest()[:32]}"')
        self._bodies[(sdk_key, base_url)] = served
        return served


def flags_app(cache: FlagCache) -> ASGIApp:
    """The ASGI app mounted at `/configuration-files` (a bare callable: `flags.asgi`)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "OPTIONS":  # a browser SDK's CORS preflight
            await _answer(send, 204, _PREFLIGHT)
            return
        if method not in ("GET", "HEAD"):
            body = error("method_not_allowed", "only GET is served here")
            await _answer(send, 405, [*JSON, (b"allow", b"GET, HEAD, OPTIONS")], body)
            return
        path: str = scope["path"]
        root: str = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        if not path.endswith(_SUFFIX):
            body = error("unknown_sdk_key", "only <sdkKey>/config_v6.json is served here")
            await _answer(send, 404, JSON, body)
            return
        sdk_key = path[1 : -len(_SUFFIX)]
        headers = dict(scope["headers"])
        served = cache.body(sdk_key, _base_url(scope, headers))
        if served is None:
            body = error("unknown_sdk_key", f"no flag environment has the SDK key '{sdk_key}'")
            await _answer(send, 404, JSON, body)
            return
        content, etag = served
        raw_etag = etag.encode()
        given = headers.get(b"if-none-match") or _ccetag(scope["query_string"])
        answer = [(b"etag", raw_etag), *_REVALIDATE]
        if given == raw_etag:
            await _answer(send, 304, answer)
        else:
            await _answer(send, 200, [*answer, *JSON], b"" if method == "HEAD" else content)

    return app


# Served on every answer, so the browser SDKs (which read the ETag) may use them; the
# preflight allows what they send.
_CORS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-expose-headers", b"ETag, Date, Content-Length"),
]
_PREFLIGHT = [
    (b"access-control-allow-methods", b"GET, OPTIONS"),
    (b"access-control-allow-headers", b"Cache-Control, Content-Type, If-None-Match"),
    (b"access-control-max-age", b"600"),
]
_REVALIDATE = [(b"cache-control", b"max-age=0, must-revalidate")]


async def _answer(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    await answer(send, status, [*headers, *_CORS], body)


def _base_url(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """This server's URL as the SDK reached it (its Host header), for `p.u`."""
    host = headers.get(b"host")
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        where = f"{server[0]}:{server[1]}"
    else:
        where = host.decode("latin-1")
    return f"{scope.get('scheme', 'http')}://{where}{scope.get('app_root_path', '')}"


def _ccetag(query: bytes) -> bytes | None:
    """The `ccetag` query parameter (browser SDKs send the ETag there)."""
    if b"ccetag=" not in query:
        return None
    for name, value in parse_qsl(query.decode("latin-1")):
        if name == "ccetag":
            return value.encode("latin-1")
    return None
