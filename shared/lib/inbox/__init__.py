"""The web inbox's domain side: session secret and CSRF tokens, and the pages' read queries."""
