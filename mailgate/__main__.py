"""`python -m mailgate` runs the command line."""

from mailgate.cli.main import entry

entry()
