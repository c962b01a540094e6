"""One stored mail through the steps that make it a ticket message."""
