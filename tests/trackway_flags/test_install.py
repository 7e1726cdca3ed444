"""`pip install ./clients/python` into a fresh virtualenv, as docs/flag-events.md says:
the hooks install without the Trackway server, light, and send to a running Trackway
from there.

The install is offline: this test's pip (with setuptools and wheel, no build isolation,
`--no-deps --no-index`) installs the directory into the fresh venv's site-packages. The
package itself needs only the standard library, and its metadata is checked to ask for
nothing else but the extras.
"""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import Server

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"

# What the application's venv gets besides trackway-flags itself, per extra.
EXTRAS = {
    'configcat-client>=10.0; extra == "configcat"',
    'openfeature-sdk>=0.10; extra == "openfeature"',
    'openfeature-sdk>=0.10; extra == "configcat-openfeature"',
    'configcat-openfeature-provider>=1.1; extra == "configcat-openfeature"',
    'segment-analytics-python>=2.3; extra == "segment"',
}
MAX_INSTALLED_BYTES = 200_000
"""trackway-flags is about 80 KB installed (docs/flag-events.md), the server 221 MB."""

# Runs in the fresh venv: a ConfigCat-like client and a stdlib analytics client that
# posts to Trackway's /v1/batch (neither SDK is installed there).
APP = textwrap.dedent(
    """
    import base64, json, sys, types, urllib.request
    from trackway_flags.configcat_hook import track_flag_evaluations

    url, write_key = sys.argv[1], sys.argv[2]
    auth = base64.b64encode(f"{write_key}:".encode()).decode()

    class Analytics:
        def _send(self, kind, **call):
            call = {k: v for k, v in call.items() if v is not None}
            message = {"type": kind, **call}
            for snake, camel in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
                if snake in message:
                    message[camel] = message.pop(snake)
            body = json.dumps({"batch": [message]}).encode()
            request = urllib.request.Request(
                url + "/v1/batch", body,
                {"content-type": "application/json", "authorization": "Basic " + auth},
            )
            urllib.request.urlopen(request, timeout=10).read()
        def identify(self, **call):
            self._send("identify", **call)
        def track(self, **call):
            self._send("track", **call)

    class ConfigCat:
        def __init__(self):
            self.callbacks = []
        def get_hooks(self):
            return types.SimpleNamespace(add_on_flag_evaluated=self.callbacks.append)

    configcat = ConfigCat()
    tracking = track_flag_evaluations(configcat, Analytics(), anonymous_id="fresh-venv")
    details = types.SimpleNamespace(
        key="newCheckout", value=True, variation_id="v-on", user=None, error=None,
        matched_targeting_rule=None, matched_percentage_option=None,
    )
    for callback in configcat.callbacks:
        callback(details)
    print(json.dumps({"tracks": tracking.stats.tracks_sent, "errors": tracking.stats.errors}))
    """
)


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with `pip install ./clients/python` done in it."""
    root = tmp_path_factory.mktemp("flags-venv")
    # A copy, because pip builds in the source tree (build/, *.egg-info).
    source = root / "python"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=60)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    offline = ["--no-deps", "--no-index", "--no-build-isolation", "--target", str(site)]
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", *offline, str(source)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return root / "venv"


def fresh_python(venv: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=venv,  # not the repository, whose src/ must not be importable
    )


def test_the_package_installs_alone_and_small(venv: Path) -> None:
    code = textwrap.dedent(
        """
        import importlib.metadata as md, importlib.util, json, pathlib
        dist = md.distribution("trackway-flags")
        size = sum(pathlib.Path(dist.locate_file(f)).stat().st_size for f in dist.files)
        print(json.dumps({
            "requires": dist.requires,
            "size": size,
            "trackway": importlib.util.find_spec("trackway") is not None,
            "modules": sorted(str(f) for f in dist.files if str(f).endswith(".py")),
        }))
        """
    )
    done = fresh_python(venv, code)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert set(found["requires"]) == EXTRAS
    assert not found["trackway"]  # the server is not in the application's venv
    assert found["modules"] == [
        f"trackway_flags/{name}.py"
        for name in ("__init__", "configcat_hook", "flag_events", "openfeature_hook")
    ]
    assert found["size"] < MAX_INSTALLED_BYTES, found["size"]


def test_the_installed_hook_sends_to_trackway(venv: Path, server: Server) -> None:
    done = fresh_python(venv, APP, server.url, server.write_key)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"tracks": 1, "errors": 0}

    # The analytics client above waited for each acknowledgement: the event is stored.
    (event,) = [e for e in server.events() if e.get("event") == "Feature Flag Evaluated"]
    assert event["anonymousId"] == "fresh-venv"
    assert event["properties"] == {
        "feature_flag_key": "newCheckout",
        "value": True,
        "variation_id": "v-on",
        "reason": "DEFAULT",
    }
    assert event["context"]["integration"] == {"name": "configcat", "version": "1.0.0"}
