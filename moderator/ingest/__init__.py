"""The webhook pipeline: the endpoint, the durable inbox, the applier."""
