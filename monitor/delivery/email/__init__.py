"""E-mail: alert messages built purely from Jinja2 templates, and sending over SMTP (aiosmtplib)."""
