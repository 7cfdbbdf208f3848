"""The running monitor: the one composition root (``root.build_app``), the daemon (APScheduler, signals,
reload), the command runtimes, health and metrics HTTP, replay and the offline demo.
May import everything but ``cli``."""
