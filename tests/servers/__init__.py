"""Real servers (PostgreSQL, ...) started on 127.0.0.1 for the tests and stopped by PID."""
