"""kvwatch: the command line and the pieces that sit on top of crawler, store and notifier."""
