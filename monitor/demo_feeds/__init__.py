"""Sample feeds for ``monitor demo``: fictionalised items written for this project (see README.md here)."""
