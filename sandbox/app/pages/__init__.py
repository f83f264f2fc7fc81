"""The pages app."""
