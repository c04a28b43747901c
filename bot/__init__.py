"""eventbot: the WeChat Official Account assistant for a developer-community meetup."""
