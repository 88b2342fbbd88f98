"""Administration behind the commands: the home, agencies, agreements, keys, retention, reminders, status."""
