"""POST /execute-docker-command: the AI Command Gateway's compatibility route."""
