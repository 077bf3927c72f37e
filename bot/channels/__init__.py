"""Channel adapters: turn what arrives into an :class:`Inbound`, render replies for the medium."""
