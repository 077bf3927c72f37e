"""Conversation logic of outagebot: pure state-machine dialogs, no I/O, no imports from ``bot``."""
