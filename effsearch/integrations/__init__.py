"""Integrations with other tools (Ray Tune). Each imports its tool only when used."""
