"""securerag."""
