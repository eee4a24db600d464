"""Storage URL passwords: used to connect, masked wherever they would be printed or written."""

from __future__ import annotations

import os
import re
from urllib.parse import quote

MASK = ":***@"
PASSWORD_ENV = "EFFSEARCH_STORAGE_PASSWORD"
_PASSWORD = re.compile(r"(://[^:/@]+):([^@]*)@")


def mask_url(url: str) -> str:
    """``postgresql://user:***@host/db`` for ``postgresql://user:secret@host/db``: what is
    printed and written to the run directory (frozen recipe, bundles, reports)."""
    return _PASSWORD.sub(r"\1" + MASK, url)


def mask_text(text: str, url: str) -> str:
    """``text`` (a driver's error, say) with the URL's password, if any, replaced by ***."""
    match = _PASSWORD.search(url)
    password = match.group(2) if match else ""
    return text.replace(password, "***") if password and password != "***" else text


def with_password(url: str) -> str:
    """The URL to connect with: a masked password comes from ``EFFSEARCH_STORAGE_PASSWORD``,
    or is left out (libpq then reads PGPASSWORD or ~/.pgpass)."""
    if MASK not in url:
        return url
    password = os.environ.get(PASSWORD_ENV)
    return url.replace(MASK, f":{quote(password, safe='')}@" if password else "@", 1)
