"""``flowsafe report``: a self-contained page per site for a client or an auditor (what is
protected, every backup and drill of a month, retention, where the copies are, the key
escrow, two charts), as HTML (inline CSS and SVG, no external request) or PDF."""
