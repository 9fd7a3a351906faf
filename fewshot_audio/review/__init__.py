"""Review in the browser: listen to what the toolkit found, confirm or reject it, and estimate how many there are."""
