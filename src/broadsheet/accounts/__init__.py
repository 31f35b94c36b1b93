"""Staff users, their roles, and Admin API tokens."""
