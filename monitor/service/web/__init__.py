"""The web page, Atom feeds and JSON API over the store (``serve``, ``run --http``)."""

from monitor.service.web.app import create_app
from monitor.service.web.server import WebServer, bind

__all__ = ["create_app", "WebServer", "bind"]
