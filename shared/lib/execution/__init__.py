"""What an execution is: the call handed to an executor and the result it returns as data."""
