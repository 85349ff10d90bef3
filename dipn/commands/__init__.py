"""One module per ``dipn`` subcommand: ``add_parser`` declares it, ``run`` carries it out."""
