"""Route modules; each exposes ``register(api)``."""
