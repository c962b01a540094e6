"""Pure mail reading: wire bytes to a parsed mail, its text, quotes and kind; no I/O."""
