"""Deduplication: signatures of texts, and the decision new, duplicate or follow-up."""
