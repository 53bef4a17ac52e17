"""Apache Airflow provider for the Central Monitoring (myWizard AIOps) logs API."""

from __future__ import annotations

__version__ = "0.1.0"
