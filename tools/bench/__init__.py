"""`make bench`: the agent's cost, measured side by side in one run."""
