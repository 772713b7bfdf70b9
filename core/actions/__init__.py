"""The action catalogue: what InfraAI can do, with schemas, risks and targets."""
