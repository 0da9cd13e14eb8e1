"""A local Telnyx: the conferencing API, signed webhooks and a phone side, for tests and the demo."""
