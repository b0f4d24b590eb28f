"""Delivery: the durable outbox, quiet hours, the backlog and the notifiers."""
