"""Matching: the query language of watch rules, and the tools that check rules."""
