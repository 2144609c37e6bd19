"""The local cluster recipe: two app instances behind nginx on one PostgreSQL and one Redis."""

from deploy.cluster.local import Instance, LocalCluster

__all__ = ["Instance", "LocalCluster"]
