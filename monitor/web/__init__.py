"""The escalation dashboard: server-rendered pages (``/``, ``/events/<id>``, ``/feeds``, ``/rules``, ``/delivery``),
their JSON (``/api/...``) and a live stream of alerts (``/stream``, server-sent events), served by the daemon's HTTP
server beside ``/metrics``.

It owns the pages, their templates and static files (htmx and uPlot vendored under ``static/vendor`` with their
licences), who may see them (``security``) and how their data is read (``reads``, through
``monitor.storage.dashboard``). It writes nothing but what an operator asks for (re-sending a dead letter) and reads
Redis only while a request is served: nobody looking costs the daemon nothing.
"""
