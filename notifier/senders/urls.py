"""Apprise URLs as values: is this one usable, and how to show it without its secrets.

``mask_url`` gives apprise's privacy form (passwords and tokens as ``****`` or ``a...z``) without apprise's
default query noise; a URL apprise cannot parse is reduced to its scheme, so a typo never leaks a token.
``url_problem`` says in a sentence why a URL cannot be used (the URL in it masked), or ``None``.
``scrub`` removes the secret parts of a URL from a text (an error message from a plugin, say).

Must not import: redis, litestar, prometheus_client, or any other module of this package but
``notifier.senders.plugins``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

import apprise

from notifier.senders.plugins import WEBHOOK_SCHEMES, InvalidSecret, decode_secret, register_plugins

#: Query parameters apprise adds to every privacy URL with their default values: noise to a reader.
_DEFAULT_PARAMS = {"overflow": "upstream", "format": "text", "retry": "0", "wait": "0.5", "optional": "no"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]{0,31})://")


@lru_cache(maxsize=4096)
def _instantiate(url: str) -> object | None:
    register_plugins()
    return apprise.Apprise.instantiate(url)


def scheme_of(url: str) -> str:
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match else ""


@lru_cache(maxsize=4096)
def mask_url(url: str) -> str:
    """Apprise's privacy form of ``url``; never the secret. Unparsable: ``scheme://****``."""
    plugin = _instantiate(url.strip()) if url.strip() else None
    if plugin is None:
        scheme = scheme_of(url)
        return f"{scheme}://****" if scheme else "****"
    masked: str = plugin.url(privacy=True)  # type: ignore[attr-defined]
    return _drop_default_params(masked)


def _drop_default_params(url: str) -> str:
    base, sep, query = url.partition("?")
    if not sep:
        return url
    kept = [
        part
        for part in query.split("&")
        if part and _DEFAULT_PARAMS.get(part.partition("=")[0]) != part.partition("=")[2]
    ]
    return base + ("?" + "&".join(kept) if kept else "")


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used as a notification target (the URL shown masked), or ``None`` if it can."""
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        return "must not be empty"
    scheme = scheme_of(text)
    if not scheme:
        return f"{mask_url(text)} is not a URL (expected scheme://...)"
    if scheme in WEBHOOK_SCHEMES:
        secrets = [v for k, v in parse_qsl(urlsplit(text).query, keep_blank_values=True) if k == "secret"]
        if secrets and secrets[-1]:
            try:
                decode_secret(secrets[-1])
            except InvalidSecret as exc:
                return f"{mask_url(text)}: {exc}"
    if _instantiate(text) is None:
        return f"{mask_url(text)} cannot be parsed as an apprise URL (unknown scheme or missing parts)"
    return None


def secret_parts(url: str) -> list[str]:
    """Pieces of ``url`` that may be secret: user info, path segments, query values (longest first)."""
    parts = urlsplit(url.strip())
    pieces: set[str] = set()
    if parts.username:
        pieces.add(unquote(parts.username))
    if parts.password:
        pieces.add(unquote(parts.password))
    pieces.update(unquote(seg) for seg in parts.path.split("/"))
    pieces.update(v for _, v in parse_qsl(parts.query, keep_blank_values=True))
    host = parts.netloc.rpartition("@")[2].partition(":")[0]
    if host and "." not in host and host != "localhost":  # slack://TOKEN/... keeps a token where a host would be
        pieces.add(unquote(host))
    return sorted((p for p in pieces if len(p) >= 6), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` with every possibly secret piece of ``url`` replaced by ``****``."""
    for piece in [url.strip(), *secret_parts(url)]:
        if piece:
            text = text.replace(piece, "****")
    return text
