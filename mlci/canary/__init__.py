"""Canary and A/B releases: traffic routers, the sequential significance test, and the decision."""
