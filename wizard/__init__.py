"""wizard: configure a Matrix/Synapse Kubernetes deployment tree."""

__version__ = "0.1.0"
