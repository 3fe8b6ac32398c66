"""`python -m agent_orchestrator` is the `devops-agent` command."""

from agent_orchestrator.cli import main

main()
