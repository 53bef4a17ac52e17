"""Deferrable triggers that poll the Central Monitoring API on the triggerer."""
