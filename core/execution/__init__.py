"""Execution: the integrations, what each action does, the job function, the executors."""
