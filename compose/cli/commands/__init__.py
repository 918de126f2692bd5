"""One module per `pycompose` subcommand; each defines `add_arguments(p)` and `run(ctx, args)`."""
