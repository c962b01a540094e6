"""Everything mailgate writes: the notices, composing, templates, loop guards, outbox rows, relays."""
