"""The built-in defaults of the configuration, in one place.

Every default a configuration can leave out is written here once. The values
that ``config`` parses (``MonitorSettings``, ``WebSettings``, the storage URL,
a notifier's time zone) and the objects that code may build without a
configuration (``fetch.FetchPolicy``, ``polling.PollPolicy``) all take their
defaults from this module, so they can never disagree.
"""

from __future__ import annotations

from typing import Final

# --- [monitor]: fetching ------------------------------------------------------
USER_AGENT = "news-monitor/0.1 (+https://github.com/news-monitor/news-monitor)"
TIMEOUT = 30.0                 # seconds, the total deadline of one request
MAX_BODY = 10_000_000          # bytes: "10MB", decimal like every size in the configuration
MAX_REDIRECTS = 5
CONCURRENCY = 16               # requests in flight in all
PER_HOST = 2                   # requests in flight per host
PER_HOST_DELAY = 1.0           # seconds between two request starts to one host
ALLOW_PRIVATE_NETWORKS = False
# robots.txt is honoured for listing pages and article pages (not for feeds,
# which are published to be polled).
RESPECT_ROBOTS = True

# --- [monitor]: polling -------------------------------------------------------
DEFAULT_INTERVAL = 15 * 60.0   # seconds between two polls of a source
# The adaptive interval (monitor.sources.polling) stays within these.
MIN_INTERVAL = 60.0
MAX_INTERVAL = 6 * 3600.0
ADAPTIVE = True
# After this many failures in a row, a source is reported broken to health_notify.
BROKEN_AFTER = 5

# --- [monitor]: processing ----------------------------------------------------
# Entries published longer ago than this are stored but raise no alert, so a
# newly added source with years of archive does not flood anyone.
MAX_AGE = 7 * 86400.0
# Processes for parsing and extraction: 0 = one per core, 1 = none (threads only).
WORKERS = 0

# --- [storage], [web], [[notifiers]] --------------------------------------------
STORAGE_URL = "sqlite:///data/monitor.db"
LISTEN = "127.0.0.1:8080"      # for `serve` and `run --http`
TIMEZONE = "UTC"               # dates on the web page, digests and quiet hours
NOTIFY_MODE: Final = "immediate"      # or "digest"
SOURCE_KIND = "feed"
FETCH_ARTICLES = True
