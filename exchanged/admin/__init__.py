"""Administration: the home, agencies, agreements, keys, retention, reminders, status."""
