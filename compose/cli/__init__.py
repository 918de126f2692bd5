"""The `pycompose` command line: argument parsing, renderers, exit codes."""
