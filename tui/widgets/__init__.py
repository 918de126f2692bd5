"""The dashboard's reusable widgets."""
