"""The DevOps agent's service: FastAPI app factory, routes by domain, sweepers and the CLI."""

__version__ = "0.1.0"
