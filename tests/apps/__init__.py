"""WSGI modules used only by the deployment tests; never imported by the app."""
