"""Chat: a conversation with the agent that plans, answers at once or gates through approval."""
