"""Talking to Telnyx: the SDK client, and the webhook event as the pipeline hands it on."""
