"""Endpoints: each reads as the list of steps its RFC gives."""
