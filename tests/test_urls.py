"""monitor.sources.urls: one spelling per article."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.provisional import urls as url_strategy

from monitor.sources.urls import canonicalize, same_site


@pytest.mark.parametrize("url, base, expected", [
    ("HTTP://WWW.Example.COM:80/a/./b/../c", None, "http://www.example.com/a/c"),
    ("https://example.com:443", None, "https://example.com/"),
    ("https://example.com:8443/x", None, "https://example.com:8443/x"),
    ("https://example.com./x", None, "https://example.com/x"),
    ("https://bücher.example/x", None, "https://xn--bcher-kva.example/x"),
    ("https://example.com/story#comments", None, "https://example.com/story"),
    ("https://example.com/s?utm_source=tw&b=2&UTM_Medium=x&a=1&fbclid=abc&gclid=1",
     None, "https://example.com/s?b=2&a=1"),
    ("https://example.com/s?mc_cid=1&mc_eid=2&igshid=3&_ga=4&ocid=5&spm=6", None,
     "https://example.com/s"),
    ("https://example.com/%7euser/%e3%81%82?q=a%2fb", None,
     "https://example.com/~user/%E3%81%82?q=a%2Fb"),
    ("https://example.com/a b/日本", None, "https://example.com/a%20b/%E6%97%A5%E6%9C%AC"),
    ("https://user:secret@example.com/x", None, "https://example.com/x"),
    ("../x?y=1#z", "https://example.com/a/b/c", "https://example.com/a/x?y=1"),
    ("//cdn.example.com/p", "https://example.com/", "https://cdn.example.com/p"),
])
def test_canonicalize(url, base, expected):
    assert canonicalize(url, base) == expected


@pytest.mark.parametrize("url", [
    "ftp://example.com/file", "javascript:alert(1)", "mailto:desk@example.com",
    "http:///no-host", "https://example.com:99999/", "not a url", "https://exa mple.com/",
])
def test_canonicalize_rejects(url):
    with pytest.raises(ValueError):
        canonicalize(url)


@pytest.mark.parametrize("a, b, expected", [
    ("https://www.example.com/a", "http://example.com/b", True),
    ("https://news.example.com/a", "https://www.example.com/", True),
    ("https://blog.example.com/", "https://news.example.com/", False),
    ("https://example.com/", "https://notexample.com/", False),
    ("https://example.com/", "javascript:void(0)", False),
    ("example.com", "https://EXAMPLE.com./x", True),
])
def test_same_site(a, b, expected):
    assert same_site(a, b) is expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(url_strategy(), st.text(max_size=80).map(lambda s: "https://example.com/" + s)))
def test_canonicalize_is_idempotent(url):
    try:
        once = canonicalize(url)
    except ValueError:
        return
    assert canonicalize(once) == once
