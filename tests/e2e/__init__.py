"""End-to-end tests: the command line, the README, the bad-input corpus, fault injection."""
