"""The blog app."""
