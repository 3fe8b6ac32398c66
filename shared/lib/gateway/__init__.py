"""The seeds' AI Command Gateway API, on the agent's own workflow, funnel and gate."""
