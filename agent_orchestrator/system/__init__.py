"""Process-level endpoints: liveness, readiness and the request-id middleware."""
