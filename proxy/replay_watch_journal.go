package proxy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"gatehouse/rules/watch"
)

// parseJournalJSON reads line as one entry of `journalctl
// --output=json`, the form a journal source reads, so that a replay of
// `journalctl -u ssh -o json` judges entries exactly as serve does: the
// filter sees the syslog line the entry stands for and takes the time
// from __REALTIME_TIMESTAMP. ok is false for anything else (a plain log
// line), and for an entry without MESSAGE or __REALTIME_TIMESTAMP.
// Values follow journalctl: a string, an array of byte values (text that
// is not valid UTF-8), null (too large), or an array of those for a field
// the entry has more than once (the first is taken).
func parseJournalJSON(line []byte) (watch.Line, bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' {
		return watch.Line{}, false
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return watch.Line{}, false
	}
	msg, ok1 := journalField(raw, "MESSAGE")
	ts, ok2 := journalField(raw, "__REALTIME_TIMESTAMP")
	us, err := strconv.ParseInt(ts, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return watch.Line{}, false
	}
	l := watch.Line{Origin: "journal", Text: strings.TrimSuffix(msg, "\n"), Time: time.UnixMicro(us)}
	l.Host, _ = journalField(raw, "_HOSTNAME")
	l.SyslogIdentifier, _ = journalField(raw, "SYSLOG_IDENTIFIER")
	if pid, ok := journalField(raw, "_PID"); ok {
		l.PID, _ = strconv.Atoi(pid) // a malformed _PID is left out, as absent
	}
	return l, true
}

// journalField returns the value of field name; ok is false when it is
// absent or not a journal value.
func journalField(raw map[string]json.RawMessage, name string) (string, bool) {
	v, ok := raw[name]
	if !ok {
		return "", false
	}
	return journalValue(v)
}

func journalValue(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || bytes.Equal(v, []byte("null")):
		return "", true
	case v[0] == '"':
		var s string
		return s, json.Unmarshal(v, &s) == nil
	case v[0] == '[':
		var arr []json.RawMessage
		if json.Unmarshal(v, &arr) != nil {
			return "", false
		}
		if len(arr) == 0 {
			return "", true
		}
		if a := bytes.TrimSpace(arr[0]); len(a) > 0 && (a[0] == '"' || a[0] == '[') {
			return journalValue(arr[0]) // a repeated field: the first value
		}
		bs := make([]byte, 0, len(arr))
		for _, x := range arr {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(x)), 10, 8)
			if err != nil {
				return "", false
			}
			bs = append(bs, byte(n))
		}
		return string(bs), true
	}
	return "", false
}
