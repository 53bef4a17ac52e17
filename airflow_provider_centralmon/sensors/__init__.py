"""Sensors that wait for Central Monitoring logs or batch exports."""
