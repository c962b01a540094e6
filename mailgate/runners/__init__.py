"""The long-running loops: intake worker, outbox sender, timers, monitoring."""
