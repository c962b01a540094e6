"""The domain layer: every change to tickets, by mail, CLI or timer, goes through here."""
