"""outagebot: the service (channels, storage, alerts, CLI) around the pure dialogs in ``dialogs``."""
