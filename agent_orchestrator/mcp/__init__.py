"""MCP transports: streamable HTTP mounted on the service, and stdio over the REST API."""
