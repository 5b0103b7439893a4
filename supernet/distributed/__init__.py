"""Ray: the cluster connection, Ray Train workers running the same trainer, and the actor pool
that evaluates a search in parallel. Only the front door imports it."""
