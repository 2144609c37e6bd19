"""The baselines every Steadfast figure is divided by, served with the same gunicorn settings."""
