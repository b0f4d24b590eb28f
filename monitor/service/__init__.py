"""The long-running service: the daemon, its metrics and the web page."""
