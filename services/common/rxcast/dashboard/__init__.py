"""The prediction dashboard: what the pharmacy and the on-call engineer look at,
live. A web application over the services' gRPC contracts (the shared clients),
holding no state of its own beyond a cache."""
