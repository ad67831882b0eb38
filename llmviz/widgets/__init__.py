"""Main-window widgets that are not dock views (model bar, text input, message bar)."""
