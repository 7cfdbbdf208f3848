"""Getting alerts out: the outbox reader (at least once per sink, retries, dead letters), Standard Webhooks
signing, the sinks (webhook, chat formats, e-mail, file, console) and alert e-mails.
May import: ``storage`` and below."""
