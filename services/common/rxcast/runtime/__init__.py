"""The runtime every rxcast service shares.

Config from flags and environment, structlog JSON logs with request ids, the
gRPC server bootstrap (health, reflection, Prometheus metrics, graceful
shutdown), server interceptors, domain errors and client channel helpers.
"""
