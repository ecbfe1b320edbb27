"""Demo-only pieces of the app (`make run`): answered only when DEMO_PHONES_URL is set."""
