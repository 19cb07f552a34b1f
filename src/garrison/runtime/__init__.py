"""Runtime threat defense: kernel sensors, container attribution, the rule engine, drift and response."""
