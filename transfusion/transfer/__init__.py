"""Weight sources and initialisation regimes."""
