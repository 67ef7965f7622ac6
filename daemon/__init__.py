"""tradectl: everything that runs."""
