"""From parsed articles to enqueued alerts: age check, matching, clustering into events, escalation level.
May import: ``storage`` and below."""
