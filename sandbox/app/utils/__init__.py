"""The utils app."""
