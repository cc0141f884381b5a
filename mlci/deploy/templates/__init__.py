"""Jinja2 templates of the Kubernetes manifests (a package so wheels ship them)."""
