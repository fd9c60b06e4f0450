// Package corpus reads fail2ban's annotated sample logs (kept in
// ../shared/corpora/fail2ban/logs relative to the module root) the way
// fail2ban's own tests read them, and compares a verdict with an
// annotation. It is shared by the tests of rules/watch/filter and
// proxy/config/fail2ban and imported by tests only; it holds no fail2ban
// file and no filter expression.
//
// It does not import rules/watch/filter, so that package's own tests can
// use it: a verdict is handed over as a Verdict.
package corpus

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The sample logs were written for TZ=CET-01CEST-02 (EU rules) and a clock
// stopped at 2005-08-14 10:00:00 UTC (fail2ban's tests/utils.py).
const (
	// Now is that clock, in seconds since 1970.
	Now = 1124013600
	// Zone is a zone with that zone's rules.
	Zone = "Europe/Zurich"
)

// Case is one annotated line and the filter options it is judged under.
type Case struct {
	File string            // the sample log that holds it (an added file's own name)
	Line int               // its line number, from 1
	Text string            // the log line
	Opts map[string]string // the filter options (shared by the cases of a set)
	Want map[string]any    // the "# failJSON" annotation
}

// Read reads the sample log at path as fail2ban's samplestestcase.py
// does: "# filterOptions" switches the option sets (each line is judged
// under every set), "# fileOptions" applies to all sets of a file,
// "# addFILE" appends a file of the same folder, "# failJSON" annotates
// the next line. The conditions the logs write in Python ("test.condition",
// "constraint") are evaluated with the log's name (the base of path).
func Read(path string) ([]Case, error) {
	dir, name := filepath.Split(path)
	var out []Case
	files := []string{name}
	for i := 0; i < len(files); i++ {
		data, err := os.ReadFile(filepath.Join(dir, files[i]))
		if err != nil {
			return nil, err
		}
		var common map[string]any
		sets := []map[string]string{{}}
		ignore := false
		var want map[string]any
		for n, line := range strings.Split(string(data), "\n") {
			line = strings.TrimRight(line, "\r")
			if rest, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " "); ok && strings.HasPrefix(line, "#") {
				key, val, _ := strings.Cut(rest, ":")
				switch key {
				case "failJSON", "filterOptions", "fileOptions", "addFILE":
					var v any
					if err := json.Unmarshal([]byte(val), &v); err != nil {
						return nil, fmt.Errorf("%s:%d: %s: %w", files[i], n+1, key, err)
					}
					var ok bool
					switch key {
					case "failJSON":
						want, ok = v.(map[string]any)
					case "fileOptions":
						common, ok = v.(map[string]any)
					case "addFILE":
						var f string
						f, ok = v.(string)
						files = append(files, f)
					case "filterOptions":
						list, isList := v.([]any)
						if !isList {
							list = []any{v}
						}
						sets, ignore = nil, false
						for _, o := range list {
							set, isMap := o.(map[string]any)
							if !isMap {
								return nil, fmt.Errorf("%s:%d: %s: unexpected value %s", files[i], n+1, key, val)
							}
							opts := map[string]string{}
							for k, x := range common {
								opts[k], _ = x.(string)
							}
							for k, x := range set {
								opts[k], _ = x.(string)
							}
							if c := opts["test.condition"]; c != "" {
								ignore = !evalCond(c, name, opts)
							}
							if !ignore {
								sets = append(sets, opts)
							}
						}
						ok = true
					}
					if !ok {
						return nil, fmt.Errorf("%s:%d: %s: unexpected value %s", files[i], n+1, key, val)
					}
					continue
				}
			}
			if want == nil || ignore {
				continue
			}
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if common != nil && len(sets) == 1 && len(sets[0]) == 0 {
				sets = []map[string]string{{}}
				for k, x := range common {
					sets[0][k], _ = x.(string)
				}
				if c := sets[0]["test.condition"]; c != "" && !evalCond(c, name, sets[0]) {
					want = nil
					continue
				}
			}
			for _, o := range sets {
				if c, _ := want["constraint"].(string); c != "" && !evalCond(c, name, o) {
					continue
				}
				out = append(out, Case{files[i], n + 1, line, o, want})
			}
			want = nil
		}
	}
	return out, nil
}

// evalCond evaluates the few Python conditions the sample logs use.
func evalCond(c, name string, opts map[string]string) bool {
	c = strings.ReplaceAll(c, " ", "")
	switch {
	case strings.HasPrefix(c, "name=="):
		return strings.Trim(c[len("name=="):], `'"`) == name
	case strings.HasPrefix(c, "opts.get('mode')=="):
		return opts["mode"] == strings.Trim(c[len("opts.get('mode')=="):], `'"`)
	case strings.HasPrefix(c, "opts.get('mode')!="):
		return opts["mode"] != strings.Trim(c[len("opts.get('mode')!="):], `'"`)
	}
	return false
}

// Verdict is what a filter made of a line, in the terms an annotation
// speaks of.
type Verdict struct {
	Kind     string     // the verdict's name, for messages
	Fail     bool       // the line is a failure
	Host     netip.Addr // the address found, if any
	HostName string     // the host text when it is not an address
	User     string
	Time     time.Time // zero when the line had none
}

// Disagree compares a verdict with a "# failJSON" annotation, or with
// fail2ban's own verdict in the same form (its time then in seconds since
// 1970): "" when they agree, else what differs. An annotation's address
// and time are compared only when it gives them; its times are read in loc.
func Disagree(want map[string]any, v Verdict, loc *time.Location) string {
	match, _ := want["match"].(bool)
	if match != v.Fail {
		return "kind " + v.Kind + ", want match " + strconv.FormatBool(match)
	}
	if !match {
		return ""
	}
	h, ok := want["host"].(string)
	if !ok {
		h, ok = want["ip4"].(string)
	}
	if !ok {
		h, ok = want["ip6"].(string)
	}
	if ok {
		got := v.HostName
		if v.Host.IsValid() {
			got = v.Host.String()
			if a, err := netip.ParseAddr(h); err == nil {
				h = a.Unmap().String()
			}
		}
		if got != h {
			return "host " + got + ", want " + h
		}
	}
	if u, ok := want["user"].(string); ok && v.User != u {
		return "user " + v.User + ", want " + u
	}
	switch ts := want["time"].(type) {
	case string:
		w, err := time.ParseInLocation("2006-1-2T15:04:05", strings.SplitN(ts, ".", 2)[0], loc)
		if err != nil || !v.Time.Truncate(time.Second).Equal(w) {
			return "time " + v.Time.In(loc).Format(time.RFC3339) + ", want " + ts
		}
	case float64: // fail2ban's own verdict
		if v.Time.IsZero() || v.Time.Unix() != int64(math.Floor(ts)) {
			return "time " + v.Time.In(loc).Format(time.RFC3339) + ", want " + time.Unix(int64(ts), 0).In(loc).Format(time.RFC3339)
		}
	case nil:
		if _, has := want["time"]; has && !v.Time.IsZero() {
			return "time " + v.Time.In(loc).Format(time.RFC3339) + ", want none"
		}
	}
	return ""
}

// Interpreter returns the program a script's "#!" line names, such as the
// Python that runs the fail2ban-regex installed at script (and so can
// import fail2ban).
func Interpreter(script string) (string, error) {
	head, err := os.ReadFile(script)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(string(head), "\n")
	py, ok := strings.CutPrefix(first, "#!")
	py = strings.TrimSpace(py)
	if !ok || py == "" || strings.ContainsAny(py, " \t") {
		return "", fmt.Errorf("%s: no interpreter line: %q", script, first)
	}
	return py, nil
}
