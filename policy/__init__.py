"""The crosscloud policy pack; `rules` holds the rules, `__main__` serves them to the engine."""
