"""The MCP face of the agent: tools and resources for coding agents, who may ask, never approve."""
