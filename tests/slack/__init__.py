"""The bot through Slack's wire protocol: signed requests in, a local fake Slack Web API out."""
