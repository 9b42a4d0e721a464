"""Queries both services need (the worker matches, the API resolves), written once."""
