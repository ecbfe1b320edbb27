"""The app's settings unchanged (middleware, database, connection reuse), plus the bare view's URL."""

from oncall.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare.urls"
