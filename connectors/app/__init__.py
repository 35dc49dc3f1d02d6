"""The app-side connector."""
