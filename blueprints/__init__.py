"""The app's blueprints, one per feature."""
