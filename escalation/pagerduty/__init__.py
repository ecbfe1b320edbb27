"""PagerDuty Events API v2 intake: `POST /v2/enqueue`, so any sender that can page PagerDuty pages through us."""
