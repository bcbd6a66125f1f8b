"""Who may do what: API keys, their roles and accounts, and the rate they may go at."""
