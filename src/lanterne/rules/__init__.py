"""Event rules, one module per event type of décret 2023-828 art. 3."""
