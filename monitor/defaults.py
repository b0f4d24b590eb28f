"""The built-in defaults of the fetch settings, in one place.

``config.MonitorSettings`` (what a configuration without a ``[monitor]`` table
gets) and ``fetch.FetchPolicy`` (what code that builds a fetcher itself gets)
both take their defaults from here, so the two can never disagree.
"""

from __future__ import annotations

USER_AGENT = "news-monitor/0.1 (+https://github.com/news-monitor/news-monitor)"
TIMEOUT = 30.0                 # seconds, the total deadline of one request
MAX_BODY = 10_000_000          # bytes: "10MB", decimal like every size in the configuration
MAX_REDIRECTS = 5
CONCURRENCY = 16               # requests in flight in all
PER_HOST = 2                   # requests in flight per host
PER_HOST_DELAY = 1.0           # seconds between two request starts to one host
ALLOW_PRIVATE_NETWORKS = False
