"""The CLI's command groups that talk to a running service over its REST API."""
