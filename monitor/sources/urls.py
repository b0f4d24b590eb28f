"""URL canonicalisation: one spelling per article, whatever link led to it.

Two links that a reader would call "the same article" should canonicalise to the
same string, so that the store recognises an article it has already seen. The
rules (RFC 3986 normalisation plus a few web habits):

- resolve against ``base``; only ``http`` and ``https`` with a host are accepted
  (anything else raises ``ValueError``);
- scheme and host lower-cased, host IDNA-encoded (``xn--``), trailing dot removed,
  default port (``:80`` for http, ``:443`` for https) dropped;
- user name and password dropped: credentials have no place in a stored URL;
- ``.`` and ``..`` path segments resolved; an empty path becomes ``/``;
- percent-escapes normalised: escaped unreserved characters decoded, other
  escapes upper-cased, characters that are not allowed in a URL escaped (UTF-8);
- fragment removed;
- tracking parameters removed (:data:`TRACKING_PARAMS`, and any name starting
  with ``utm_``); the other parameters keep their order and spelling.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

__all__ = ["TRACKING_PARAMS", "canonicalize", "same_site"]

#: Query parameters that identify a campaign, a click or a visitor, never the
#: article itself (compared case-insensitively; ``utm_*`` is handled as a prefix).
TRACKING_PARAMS = frozenset({
    # Google / DoubleClick / Google Analytics
    "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "_ga", "_gl",
    # Meta, Instagram, Microsoft, Yandex, Twitter/X, TikTok, LinkedIn
    "fbclid", "igshid", "igsh", "msclkid", "yclid", "twclid", "ttclid", "li_fat_id",
    # Mailchimp, HubSpot, Marketo, Vero, Olytics
    "mc_cid", "mc_eid", "_hsenc", "_hsmi", "__hstc", "__hssc", "__hsfp",
    "hsctatracking", "mkt_tok", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id",
    # Adobe, Microsoft News, Yahoo/AOL, Alibaba, misc. share/referral tags
    "s_cid", "cmpid", "ocid", "ncid", "spm", "ref_src", "ref_url", "soc_src",
    "soc_trk", "sr_share", "guccounter", "guce_referrer", "guce_referrer_sig",
    "rb_clickid", "wickedid", "at_medium", "at_campaign", "at_custom1",
    "__twitter_impression",
})

_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_SUB_DELIMS = "!$&'()*+,;="
_PATH_SAFE = frozenset(_UNRESERVED | set(_SUB_DELIMS) | set(":@/"))
_QUERY_SAFE = frozenset(_PATH_SAFE | set("?"))
_HEX = frozenset("0123456789abcdefABCDEF")
_HOST_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?"
                      r"(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$")


def canonicalize(url: str, base: str | None = None) -> str:
    """Return the canonical spelling of ``url`` (resolved against ``base``).

    Raises ``ValueError`` for a URL that is not http(s), has no host, or cannot
    be parsed (bad port, bad IDNA host).
    """
    if not isinstance(url, str):
        raise ValueError("URL must be a string")
    url = url.strip()
    if base:
        url = urljoin(base.strip(), url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL: {url[:200]!r}")
    host = _canonical_host(parts.hostname or "", url)
    port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _remove_dot_segments(_normalize_escapes(parts.path, _PATH_SAFE)) or "/"
    if not path.startswith("/"):
        path = "/" + path
    query = _clean_query(parts.query)
    return urlunsplit((scheme, netloc, path, query, ""))


def same_site(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` (URLs or bare hosts) are on roughly the same site.

    The hosts, ignoring a leading ``www.``, are equal, or one is a subdomain of
    the other (``news.example.com`` and ``example.com``). Unparseable input is
    never the same site.
    """
    ha, hb = _site_host(a), _site_host(b)
    if not ha or not hb:
        return False
    return ha == hb or ha.endswith("." + hb) or hb.endswith("." + ha)


def _site_host(value: str) -> str:
    try:
        if "//" not in value:
            value = "http://" + value
        host = _canonical_host(urlsplit(value.strip()).hostname or "", value)
    except ValueError:
        return ""
    return host[4:] if host.startswith("www.") else host


def _canonical_host(host: str, url: str) -> str:
    host = unquote(host).strip().lower().rstrip(".")
    if not host:
        raise ValueError(f"URL has no host: {url[:200]!r}")
    if ":" in host:  # IPv6 literal (urlsplit already removed the brackets)
        return f"[{host}]"
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid host name in {url[:200]!r}") from exc
    if not _HOST_RE.match(host):
        raise ValueError(f"invalid host name in {url[:200]!r}")
    return host


def _remove_dot_segments(path: str) -> str:
    if "." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    if path.startswith("/") and not result.startswith("/"):
        result = "/" + result
    return result


def _normalize_escapes(text: str, safe: frozenset[str]) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%" and i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
            decoded = chr(int(text[i + 1:i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1:i + 3].upper())
            i += 3
            continue
        if ch in safe:
            out.append(ch)
        else:  # includes a lone "%", spaces, brackets and non-ASCII
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        i += 1
    return "".join(out)


def _is_tracking(name: str) -> bool:
    key = unquote(name.replace("+", " ")).strip().lower()
    return key.startswith("utm_") or key in TRACKING_PARAMS


def _clean_query(query: str) -> str:
    kept = [p for p in query.split("&") if p and not _is_tracking(p.split("=", 1)[0])]
    return "&".join(_normalize_escapes(p, _QUERY_SAFE) for p in kept)


def resolve_http_url(href: str | None, base: str, *, max_length: int = 4096) -> str | None:
    """``href`` resolved against ``base`` if it is an http(s) URL with a host; else None.

    Not canonicalised: the address as the publisher gave it."""
    href = (href or "").strip()
    if not href or len(href) > max_length:
        return None
    try:
        resolved = urljoin(base, href)
        parts = urlsplit(resolved)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return resolved

