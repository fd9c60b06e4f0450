// Package notify tells operators about bans: on every ban it posts a JSON
// webhook and/or sends a plain-text e-mail (SMTP with STARTTLS) naming the
// banned address, the jail, the reason, how long the ban lasts and the
// last offences noted for that client: request lines that matched a rule,
// or the log lines a watch source blamed it for (source, file, line).
//
// Data flows in through a rules.Subscription (Notifier.Run consumes the
// ban list's change feed; Removed changes are ignored) and through
// Notifier.Note, which middleware and jails may call with the request
// lines that matched a rule, before reporting the offence. It flows out
// over HTTP and SMTP only. notify decides nothing about bans and never
// blocks the ban list: a consumer that falls behind is told so by its
// subscription, resynchronises, and says in its next message that some
// bans were coalesced.
//
// Each channel (webhook, e-mail) is rate limited on its own: the first
// ban is sent at once, and later ones within Config.MinInterval of the
// last message are gathered into one digest, so a ban storm sends a
// handful of messages, not one per ban. Failed deliveries are retried
// with exponential backoff.
//
// notify does not own configuration parsing (proxy/config resolves the
// secrets and maps the notify: section to Config) nor the ban list.
// A Notifier is safe for concurrent use: Note may be called from any
// goroutine, while Run is one long-lived loop owned by its caller.
package notify
