"""The Textual dashboard; data through compose/ and engine.api only."""
