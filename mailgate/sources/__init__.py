"""Where raw mail comes from: SMTP/LMTP, IMAP, MTA pipes and imports."""
