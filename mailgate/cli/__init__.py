"""The `mailgate` command line: click groups over the domain layer."""
