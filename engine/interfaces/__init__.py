"""What people use: the CLI (one module per subcommand), text panels and figures."""
