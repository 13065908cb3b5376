"""Click command-line interface; the only layer that prints and exits."""
