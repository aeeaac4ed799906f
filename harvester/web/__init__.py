"""The guarded web layer: the one HTTP client (address policy, byte caps, deadlines, retries,
politeness), robots.txt, URL canonicalisation and the extraction of text from fetched bodies."""
