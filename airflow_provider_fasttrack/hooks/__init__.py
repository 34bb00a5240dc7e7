"""Hooks: the Backend.AI REST client."""
