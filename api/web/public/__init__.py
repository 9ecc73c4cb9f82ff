"""Public pages, no login: the market results board and the certificate page with its QR code."""
