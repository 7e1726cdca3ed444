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

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp

from trackway.flags import environments as envs
from trackway.storage.base import StateStore

_SUFFIX = "/config_v6.json"
# An unknown key reloads at once, as an unknown write key does (ingest/sources.py), but at
# most this often, so a flood of wrong keys cannot turn into a flood of reads.
_MISS_RELOAD_INTERVAL_S = 1.0


class FlagCache:
    """SDK key → stored environment, and the served bytes per (key, base URL)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._envs: dict[str, envs.Environment] = {}
        self._bodies: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._versions: dict[str, str] = {}
        self._last_miss_reload = 0.0
        self.reload()

    def reload(self) -> None:
        self._envs = {env.sdk_key: env for env in envs.environments(self._store)}
        self._bodies = {}
        self._versions = {}

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
    """The ASGI app mounted at `/configuration-files`."""

    async def download(request: Request) -> Response:
        path = request.path_params["path"]
        if not path.endswith(_SUFFIX):
            return _not_found("only <sdkKey>/config_v6.json is served here")
        sdk_key = path[: -len(_SUFFIX)]
        base = str(request.base_url).rstrip("/")
        base = (
            base[: -len("/configuration-files")] if base.endswith("/configuration-files") else base
        )
        served = cache.body(sdk_key, base)
        if served is None:
            return _not_found(f"no flag environment has the SDK key '{sdk_key}'")
        body, etag = served
        headers = {"ETag": etag, "Cache-Control": "max-age=0, must-revalidate"}
        given = request.headers.get("if-none-match") or request.query_params.get("ccetag")
        if given == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    return CORSMiddleware(
        Router([Route("/{path:path}", download, methods=["GET"])]),
        allow_origins=["*"],
        allow_methods=["GET", "OPTIONS"],
        allow_headers=["Cache-Control", "Content-Type", "If-None-Match"],
        expose_headers=["ETag", "Date", "Content-Length"],
        max_age=600,
    )


def _not_found(message: str) -> Response:
    return JSONResponse({"code": "unknown_sdk_key", "message": message}, 404)
