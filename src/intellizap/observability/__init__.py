"""What the system says about itself: Prometheus metrics (``/metrics``), the job wrapper that
gives worker log lines their tenant context, and the rule for what of a job's arguments a log
line or an operator command may show."""
