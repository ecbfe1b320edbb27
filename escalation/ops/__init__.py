"""What operators' tools read: health probes, Prometheus metrics (see README, Production)."""
