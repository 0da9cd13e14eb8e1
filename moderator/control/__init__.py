"""Commands to Telnyx: moderator actions, dial-in routing, the outbox of commands the product decides itself."""
