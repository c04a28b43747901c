"""Background work: the outbox sender, reminder and broadcast jobs."""
