"""Live pages: fragments, broadcasts, the websocket consumers and the channel layer."""
