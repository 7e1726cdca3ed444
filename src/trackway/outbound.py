"""What every request Trackway sends to a third party carries: its `User-Agent`.

Destinations (`destinations.http.HttpTransport`) and reverse ETL's sends
(`outbound_client`) both take it from here. Some receivers refuse requests without a
User-Agent of their own, or with one that looks like a bot's (Kameleoon's data API).
"""

import httpx

from trackway import __version__

USER_AGENT = f"Trackway/{__version__}"


def outbound_client() -> httpx.Client:
    """An httpx client whose requests carry Trackway's `User-Agent`."""
    return httpx.Client(headers={"User-Agent": USER_AGENT})
