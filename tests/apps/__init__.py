"""Test-only WSGI apps: the real app plus routes that misbehave on purpose (never deployed)."""
