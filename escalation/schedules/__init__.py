"""Schedules: who is on call when. `shifts` is the pure rules; the rest reads and writes them."""
