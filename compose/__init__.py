"""The Compose side of pycompose: file -> model -> plan -> apply, and the CLI."""
