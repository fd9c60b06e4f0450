package proxy

import (
	"bytes"

	"gatehouse/rules/watch"
)

// parseJournalJSON reads line as one entry of `journalctl
// --output=json`, the form a journal source reads, so that a replay of
// `journalctl -u ssh -o json` judges entries exactly as serve does: the
// filter sees the syslog line the entry stands for and takes the time
// from __REALTIME_TIMESTAMP. ok is false for anything else (a plain log
// line), and for an entry without MESSAGE's time.
func parseJournalJSON(line []byte) (watch.Line, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return watch.Line{}, false
	}
	l, err := watch.ParseJournalJSON(line)
	if err != nil || l.Time.IsZero() {
		return watch.Line{}, false
	}
	return l, true
}
