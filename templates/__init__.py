"""Bundled data: templates/deployment is the tree `wizard init` copies."""
