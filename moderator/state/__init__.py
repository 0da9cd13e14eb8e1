"""Conference state: what each event means (rules), what a batch changed, and its JSON shape."""
