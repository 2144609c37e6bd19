"""Outgoing email: templates, backends (console, SMTP), the one delivery point and the RQ queue."""
