"""Production monitoring: rules on Prometheus metrics, live drift, and the verdict that acts on them."""
