"""The tradectl rule language: pydantic models, loader, JSON Schema."""
