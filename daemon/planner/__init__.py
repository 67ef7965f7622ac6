"""The pure planner: rules x observed account -> plan. Imports only schemas and the stdlib."""
