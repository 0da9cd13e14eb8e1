"""The JSON API: reads, actions, and the one error shape."""
