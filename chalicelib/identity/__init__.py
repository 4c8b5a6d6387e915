"""Identity: users, credentials, tokens and roles."""
