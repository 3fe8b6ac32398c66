"""What a workflow carries: the request, its plan of typed operations, and the plan's risk."""
