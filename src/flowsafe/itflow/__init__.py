"""Everything that knows how ITFlow lays out and stores its data."""
