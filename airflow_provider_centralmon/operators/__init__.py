"""Operators that export Central Monitoring logs and query the service."""
