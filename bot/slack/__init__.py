"""The Slack surface: Bolt listeners and the Block Kit they render."""
