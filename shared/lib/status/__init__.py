"""What the agent can reach right now: database, hosts, model, receivers, sweepers."""
