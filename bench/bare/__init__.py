"""The intake baseline: the same Django project and gunicorn, with one view that only stores the raw body.

Loaded only by the benchmark (DJANGO_SETTINGS_MODULE=bench.bare.settings); never part of the app's URLs.
"""
